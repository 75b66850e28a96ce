//! `shipshape user add --data-dir DIR`: adds a user to a data directory directly, with no
//! registry running on it, as the operator (`System::Operator`). This is how the first
//! administrator is created without `SHIPSHAPE_ADMIN_PASSWORD`. The data directory's lock
//! (the one `shipshape serve` holds while it serves) is taken for the while, so a running
//! registry refuses it, and a registry cannot start meanwhile.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use shipshape_auth::Auth;
use shipshape_meta::principal::{Principal, System};
use shipshape_meta::{Catalogue, SystemClock};

use crate::remote::Format;
use crate::remote::user::AddArgs;

pub fn add(args: &AddArgs, format: Format) -> ExitCode {
    let dir = args.data_dir.as_deref().expect("only with --data-dir");
    match run(args, dir, format) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.replace(['\n', '\r'], " "));
            ExitCode::FAILURE
        }
    }
}

fn run(args: &AddArgs, dir: &Path, format: Format) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!(
            "no data directory at {} (give the registry's data directory, as --data-dir of \
             shipshape serve)",
            dir.display()
        ));
    }
    let _lock = lock(dir, args)?;
    let password = crate::remote::login::new_password(args.password_stdin, &args.name)
        .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let user = runtime.block_on(async {
        let catalogue = Catalogue::open_sqlite(&dir.join("catalogue.db"))
            .await
            .map_err(|e| format!("cannot open the catalogue in {}: {e}", dir.display()))?;
        let added = async {
            let auth = Auth::open(
                catalogue.clone(),
                Arc::new(SystemClock),
                &dir.join("auth"),
                "shipshape",
            )
            .await?;
            auth.add_user(
                &Principal::system(System::Operator),
                &args.name,
                &password,
                args.admin,
            )
            .await
        }
        .await
        .map_err(|e| e.to_string());
        catalogue.close().await;
        added
    })?;
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&user).expect("a user serialises")
        );
        return Ok(());
    }
    let admin = if user.admin { " (administrator)" } else { "" };
    println!("added user {}{admin} to {}", user.name, dir.display());
    println!(
        "start the registry on it (shipshape serve --data-dir {}), then log in: shipshape login -u {}",
        dir.display(),
        user.name
    );
    Ok(())
}

/// The data directory's lock, as `shipshape serve` takes it; refused while a registry holds it.
fn lock(dir: &Path, args: &AddArgs) -> Result<std::fs::File, String> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "a registry is running on {} (it holds {}): stop it first, or add the user through \
             it, logged in as an administrator: shipshape user add{} {}",
            dir.display(),
            path.display(),
            if args.admin { " --admin" } else { "" },
            args.name
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}
