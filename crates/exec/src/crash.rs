//! Crash points for tests: `CNISWAP_TEST_CRASH_AT=STEP:POINT` makes the process abort (as
//! `kill -9` would: no destructors, no flushing) when step STEP reaches POINT. The executor has
//! `before-start`, `after-start`, `after-run` and `after-finish`; actions add `mid` inside long
//! or multi-part steps (after the first eviction of a drain, between a backup and its delete).

pub const ENV: &str = "CNISWAP_TEST_CRASH_AT";

#[derive(Debug, Clone, Default)]
pub struct CrashPoints {
    at: Option<(String, String)>,
    /// Abort the process (the real thing); otherwise panic, for in-process tests.
    abort: bool,
}

impl CrashPoints {
    pub fn none() -> Self {
        CrashPoints::default()
    }

    pub fn from_env() -> Self {
        let at = std::env::var(ENV).ok().and_then(|v| {
            v.rsplit_once(':')
                .map(|(s, p)| (s.to_string(), p.to_string()))
        });
        CrashPoints { at, abort: true }
    }

    /// Panics instead of aborting at `step`/`point` (tests in one process).
    pub fn panic_at(step: &str, point: &str) -> Self {
        CrashPoints {
            at: Some((step.into(), point.into())),
            abort: false,
        }
    }

    pub fn point(&self, step: &str, point: &str) {
        if let Some((s, p)) = &self.at
            && s == step
            && p == point
        {
            if self.abort {
                eprintln!("cniswap: test crash at {step}:{point}");
                std::process::abort();
            }
            panic!("test crash at {step}:{point}");
        }
    }
}
