//! Calendar feeds: fetching an https:// (or loopback http://) iCalendar address for the
//! cache in [`super`].

use std::time::Duration;

use chrono_tz::Tz;

use super::{parse_bytes, Parsed, FETCH_TIMEOUT, MAX_CALENDAR_BYTES};
use crate::profile::CalendarSource;

/// The HTTP client for feeds: rustls, a timeout, at most 5 redirects and none to plain
/// http (except to this machine).
pub(super) fn feed_client() -> anyhow::Result<reqwest::Client> {
    use anyhow::Context as _;
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let local = attempt
            .url()
            .host_str()
            .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]");
        if attempt.previous().len() >= 5 {
            attempt.error("more than 5 redirects")
        } else if attempt.url().scheme() != "https" && !local {
            attempt.error("a redirect to plain http")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .redirect(policy)
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("mailtriage/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client for calendar feeds")
}

/// Fetches and parses one feed, reading at most [`MAX_CALENDAR_BYTES`].
pub(super) async fn fetch(
    client: &reqwest::Client,
    source: &CalendarSource,
    zone: Tz,
) -> anyhow::Result<Parsed> {
    let CalendarSource::Url(url) = source else {
        anyhow::bail!("not a feed");
    };
    let name = source.describe();
    // reqwest's own errors carry the whole address: keep them out of logs.
    let quiet = |e: reqwest::Error| e.without_url();
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot fetch the calendar {name}: {}", quiet(e)))?;
    let status = resp.status();
    if !status.is_success() {
        anyhow::bail!("the calendar {name} answered {status}");
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_CALENDAR_BYTES)
    {
        anyhow::bail!("the calendar {name} is more than {MAX_CALENDAR_BYTES} bytes");
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| anyhow::anyhow!("cannot fetch the calendar {name}: {}", quiet(e)))?
    {
        if (bytes.len() + chunk.len()) as u64 > MAX_CALENDAR_BYTES {
            anyhow::bail!("the calendar {name} is more than {MAX_CALENDAR_BYTES} bytes");
        }
        bytes.extend_from_slice(&chunk);
    }
    parse_bytes(&bytes, &name, zone)
}
