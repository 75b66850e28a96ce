//! What a caller may see of listings that span repositories (the activity log, the restore
//! bin, storage figures): the rule, in one place, that the services apply before they answer.
//!
//! A repository's entries are shown to callers who may read it (`Permission::Pull`); entries
//! that name no repository (accounts, policies, collections) only to callers who may see the
//! registry as a whole (`Permission::SeeRegistryWide`: administrators, admin on `**`).

use shipshape_meta::principal::{Permission, Principal};

/// Whether `by` may read every repository, so a listing needs no filter.
pub(crate) fn reads_everything(by: &Principal) -> bool {
    by.may(Permission::Pull, None)
}

/// The names among `names` that `by` may read.
pub(crate) fn readable(by: &Principal, names: Vec<String>) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| by.may(Permission::Pull, Some(n)))
        .collect()
}

/// Whether `by` may see what names no repository.
pub(crate) fn sees_registry_wide(by: &Principal) -> bool {
    by.may(Permission::SeeRegistryWide, None)
}
