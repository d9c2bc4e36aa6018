//! Request rate limits per client address (a token bucket each, `governor`): a flood from
//! one address is answered 429 with `Retry-After`, and the others are served as before.
//! `/healthz` is not limited (load balancers probe it).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// The buckets, one per client address.
pub(crate) struct Limits {
    buckets: DefaultKeyedRateLimiter<IpAddr>,
    /// Requests seen, to forget idle addresses now and then (bounded memory).
    seen: AtomicU64,
}

impl Limits {
    /// `per_second` requests per second per address, in bursts of up to twice that;
    /// `None` for no limit.
    pub(crate) fn new(per_second: u32) -> Option<Limits> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
        Some(Limits {
            buckets: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            seen: AtomicU64::new(0),
        })
    }

    /// `Err(seconds to wait)` when `address` is over its rate.
    fn check(&self, address: IpAddr) -> Result<(), u64> {
        if self.seen.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.buckets.retain_recent();
        }
        self.buckets.check_key(&address).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// The middleware: 429 with `Retry-After` when the caller's address is over its rate.
pub(crate) async fn limit(
    State(state): State<Arc<crate::AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(limits) = &state.limits {
        let address = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        if request.uri().path() != "/healthz" {
            if let Err(wait) = limits.check(address) {
                state.metrics.add(&state.metrics.rate_limited, 1);
                let mut refused = crate::refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many requests from {address}: try again in {wait} s"),
                );
                refused.headers_mut().insert(
                    header::RETRY_AFTER,
                    wait.max(1)
                        .to_string()
                        .parse()
                        .expect("a number is a header"),
                );
                return refused;
            }
        }
    }
    next.run(request).await
}
