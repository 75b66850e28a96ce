//! The services a page calls, all but one: the registry. A page reaches the registry through
//! `Ctx::registry`, the one that draws with the last storage figures rather than wait for
//! current ones (`Registry::for_pages`); with the whole `AppState` at hand, a call written as
//! `ctx.app.registry…` reached the waiting one and kept pages waiting seconds after a change.
//! The state sits in a private field here, so the pages' modules cannot reach past it.

use shipshape_auth::Auth;
use shipshape_gc::Collector;
use shipshape_gc::retention::Retention;

use crate::http::AppState;

pub(crate) struct PageServices(AppState);

impl PageServices {
    pub fn new(app: AppState) -> PageServices {
        PageServices(app)
    }

    pub fn auth(&self) -> &Auth {
        &self.0.auth
    }

    pub fn collector(&self) -> &Collector {
        &self.0.collector
    }

    pub fn retention(&self) -> &Retention {
        &self.0.retention
    }

    /// The server speaks TLS (session cookies are then `Secure`).
    pub fn tls(&self) -> bool {
        self.0.tls
    }
}
