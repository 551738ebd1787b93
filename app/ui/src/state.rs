//! App-wide state, shared with every screen through one context ([`Ctx`]).
//!
//! Screens read view-models straight from the [`Client`] while rendering (local SQLite,
//! milliseconds) and subscribe to [`Ctx::revision`], which every write and every sync bumps,
//! so a saved visit shows everywhere at once. Sync runs on a background task
//! ([`run_background`]): periodically and when asked, the [`Client::sync`] future runs on a
//! tokio worker thread and the UI thread only awaits its result, so the UI never freezes.

use std::time::Duration;

use dioxus::prelude::*;
use gridlink_client::{Client, Error, Identity, PlainWords, SyncReport, SyncStatus};
use gridlink_shared::{Lang, Role, time::Millis};

/// How often the background task syncs on its own.
pub const SYNC_EVERY: Duration = Duration::from_secs(120);
/// The app locks after this long without a tap or keystroke (when a PIN is set).
pub const LOCK_AFTER_MS: Millis = 5 * 60 * 1000;

/// What the sync button and bar show about the sync in flight or just finished.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncUi {
    pub running: bool,
    /// The last finished sync's report, if it succeeded.
    pub last_report: Option<SyncReport>,
    /// The last sync error, in plain words; cleared by a successful sync.
    pub error: Option<PlainWords>,
}

/// Where the app stands before its tabs can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Not enrolled: the first-run screen.
    Enroll,
    /// Enrolled but no PIN yet.
    SetPin,
    /// Locked after inactivity (or on start), or because whether a PIN is set could not be
    /// read (fail closed).
    Locked,
    /// Ten wrong PINs in a row: the PIN key is destroyed; only the administrator can recover
    /// the data. Final for this run of the app.
    LockedOut,
    /// The administrator wiped this device; its store and keys are erased. Final.
    Wiped,
    /// The tabs.
    Open,
}

/// Everything screens share. Cheap to clone (a client handle and signal handles).
#[derive(Clone)]
pub struct Ctx {
    pub client: Client,
    pub lang: Signal<Lang>,
    /// The current time, ticking every second in the app (fixed in tests).
    pub now: Signal<Millis>,
    /// `now` rounded down to the minute. Lists subscribe to this one, so they re-read the
    /// store once a minute while only countdowns re-render every second.
    pub minute: Signal<Millis>,
    /// Bumped after every local write and every sync; screens that read it re-read the store.
    pub revision: Signal<u64>,
    pub sync: Signal<SyncUi>,
    pub gate: Signal<Gate>,
    pub last_activity: Signal<Millis>,
    /// Sends "sync now" to the background task; `None` when it is not running (tests).
    pub sync_requests: Option<tokio::sync::mpsc::UnboundedSender<()>>,
    /// Whether the clock ticks by itself (false in tests: time stands still).
    pub live_clock: bool,
    /// A one-line confirmation ("saved on this phone") shown on the screen it names.
    pub flash: Signal<Option<Flash>>,
}

/// A confirmation shown at the top of one screen until the user moves on.
#[derive(Clone, Debug, PartialEq)]
pub struct Flash {
    pub route: crate::Route,
    pub text: String,
}

impl PartialEq for Ctx {
    fn eq(&self, other: &Self) -> bool {
        self.lang == other.lang && self.revision == other.revision && self.now == other.now
    }
}

impl Ctx {
    /// The current language (subscribes the caller).
    pub fn lang(&self) -> Lang {
        (self.lang)()
    }

    /// Now, rounded down to the minute (subscribes the caller to minute changes only).
    pub fn minute(&self) -> Millis {
        (self.minute)()
    }

    /// Subscribes the caller to store changes.
    pub fn watch(&self) -> u64 {
        (self.revision)()
    }

    /// Tells every screen the store changed.
    pub fn changed(&self) {
        let mut revision = self.revision;
        *revision.write() += 1;
    }

    /// Now, without subscribing (for event handlers).
    pub fn now_untracked(&self) -> Millis {
        *self.now.peek()
    }

    pub fn set_lang(&self, lang: Lang) {
        let mut signal = self.lang;
        signal.set(lang);
        crate::prefs::save_lang(self.client.dir(), lang);
    }

    /// After a local write: every screen re-reads, and a sync is asked for so the change
    /// leaves the phone as soon as there is signal.
    pub fn saved(&self) {
        self.changed();
        self.request_sync();
    }

    /// Shows `text` on `route` (typically the screen a form returns to).
    pub fn flash(&self, route: crate::Route, text: &str) {
        let mut flash = self.flash;
        flash.set(Some(Flash { route, text: text.to_string() }));
    }

    /// Asks the background task to sync now (no-op without one).
    pub fn request_sync(&self) {
        if let Some(tx) = &self.sync_requests {
            let _ = tx.send(());
        }
    }

    /// Locks the app if a PIN is set. When that cannot be read, it locks too (fail closed):
    /// the lock screen then says what went wrong.
    pub fn lock(&self) {
        let mut gate = self.gate;
        match self.client.has_pin() {
            Ok(false) => {}
            Ok(true) => gate.set(Gate::Locked),
            Err(error) => {
                tracing::warn!(%error, "cannot read whether a PIN is set; locking");
                gate.set(Gate::Locked);
            }
        }
    }

    /// Records a tap or keystroke for the inactivity lock.
    pub fn touch(&self) {
        let mut last = self.last_activity;
        let now = *self.now.peek();
        if *last.peek() != now {
            last.set(now);
        }
    }

    /// Words in the current language for a core error.
    pub fn words(&self, error: &Error) -> String {
        pick(self.lang(), &error.plain())
    }

    /// The enrolled user's identity card, if any.
    pub fn identity(&self) -> Option<Identity> {
        self.watch();
        self.client.identity().ok()
    }

    /// The enrolled user's role (grid worker when unknown).
    pub fn role(&self) -> Role {
        self.identity().map(|i| i.role).unwrap_or(Role::GridWorker)
    }

    pub fn status(&self) -> Result<SyncStatus, Error> {
        self.watch();
        self.client.status()
    }
}

/// Whether the open app has been idle long enough to lock.
pub fn should_lock(gate: Gate, last_activity: Millis, now: Millis) -> bool {
    gate == Gate::Open && now - last_activity > LOCK_AFTER_MS
}

/// `at` rounded down to the minute.
pub fn floor_minute(at: Millis) -> Millis {
    at - at.rem_euclid(60_000)
}

/// Plain words in one language.
pub fn pick(lang: Lang, words: &PlainWords) -> String {
    match lang {
        Lang::Zh => words.zh.clone(),
        Lang::En => words.en.clone(),
    }
}

/// The shared context. Panics outside [`crate::App`] (a programming error).
pub fn use_ctx() -> Ctx {
    use_context::<Ctx>()
}

/// Where a freshly opened app starts: first run, PIN set-up, or locked. Any error reading
/// whether a PIN is set locks (fail closed): offering "set a PIN" then would open the app.
pub fn initial_gate(client: &Client) -> Gate {
    match client.has_pin() {
        Ok(true) => return Gate::Locked,
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(%error, "cannot read whether a PIN is set; locking");
            return Gate::Locked;
        }
    }
    let enrolled = client.status().map(|s| s.enrolled).unwrap_or(false);
    if enrolled { Gate::SetPin } else { Gate::Enroll }
}

/// Starts the clock and the sync loop. Called once by [`crate::App`] when the app runs for
/// real (desktop, phone); tests do not call it, so their time stands still.
pub fn run_background(ctx: &Ctx, mut requests: tokio::sync::mpsc::UnboundedReceiver<()>) {
    // The clock: once a second, plus the inactivity lock.
    let clock = ctx.clone();
    spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = gridlink_shared::time::now_millis();
            let mut signal = clock.now;
            signal.set(now);
            let minute = floor_minute(now);
            if *clock.minute.peek() != minute {
                let mut signal = clock.minute;
                signal.set(minute);
            }
            if should_lock(*clock.gate.peek(), *clock.last_activity.peek(), now) {
                clock.lock();
            }
        }
    });

    // The sync loop: on request, and every SYNC_EVERY.
    let syncer = ctx.clone();
    spawn(async move {
        loop {
            tokio::select! {
                request = requests.recv() => if request.is_none() { return },
                _ = tokio::time::sleep(SYNC_EVERY) => {}
            }
            // Requests queued while a sync ran are served by the one that follows.
            while requests.try_recv().is_ok() {}
            sync_once(&syncer).await;
        }
    });
}

/// Runs one sync, off the UI thread when a tokio runtime is there, and publishes the outcome.
pub async fn sync_once(ctx: &Ctx) {
    if matches!(*ctx.gate.peek(), Gate::LockedOut | Gate::Wiped) {
        return;
    }
    if !ctx.client.status().map(|s| s.enrolled && !s.revoked).unwrap_or(false) {
        return;
    }
    let mut sync = ctx.sync;
    sync.write().running = true;
    let client = ctx.client.clone();
    let result = match tokio::runtime::Handle::try_current() {
        Ok(handle) => match handle.spawn(async move { client.sync().await }).await {
            Ok(result) => result,
            Err(join) => Err(Error::Task(format!("sync: {join}"))),
        },
        Err(_) => client.sync().await,
    };
    {
        let mut state = sync.write();
        state.running = false;
        match result {
            Ok(report) => {
                state.last_report = Some(report);
                state.error = None;
            }
            Err(error) => {
                tracing::warn!(%error, "sync failed");
                state.error = Some(error.plain());
                if matches!(error, Error::Wiped) {
                    // The store and its keys are already erased: nothing else may show.
                    let mut gate = ctx.gate;
                    gate.set(Gate::Wiped);
                }
            }
        }
    }
    ctx.changed();
}
