//! Calendar feeds: fetching an https:// (or loopback http://) iCalendar address for the
//! cache in [`super`], and the rules for where a feed may lead the daemon.
//!
//! The feed's address is the owner's choice, so its host is trusted whatever it resolves
//! to: a calendar server on this machine or on the office network keeps working. Where a
//! feed *redirects* is the feed server's choice, and a hostile or compromised server could
//! use a redirect to make the daemon request something on this machine or its network
//! every `calendar_refresh` (server-side request forgery, issue 19). So a redirect
//!
//! - is followed at most [`MAX_REDIRECTS`] times in a row;
//! - never goes from https to plain http, and plain http is followed only within the
//!   feed's own host (a feed on this machine may move within its server);
//! - reaches another host only at public addresses: never loopback, private (RFC 1918,
//!   fc00::/7), link-local (169.254/16, where cloud metadata lives; fe80::/10),
//!   unspecified or another special-purpose block ([`is_public`]).
//!
//! Addresses written as IP literals are judged in the redirect policy ([`judge`]); host
//! names when the connection is made, by [`FeedResolver`] (its comment says why there and
//! what that cannot do). Feeds are fetched directly, never through an `HTTPS_PROXY`: a
//! proxy would resolve the names itself, out of the resolver's sight.
//!
//! The body is read up to [`MAX_CALENDAR_BYTES`] (never decompressed: reqwest is built
//! without gzip), the whole fetch within [`FETCH_TIMEOUT`]. No `Referer` is sent, since
//! it would carry the feed's secret address to wherever a redirect points. Errors name
//! an address by scheme, host and port only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use chrono_tz::Tz;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

use super::{parse_bytes, Parsed, FETCH_TIMEOUT, MAX_CALENDAR_BYTES, MAX_REDIRECTS};
use crate::profile::CalendarSource;

/// Longest wait for a connection to the feed's server (within [`FETCH_TIMEOUT`]).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a redirect was not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Refusal {
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooMany,
    #[error("it is not an http(s) address")]
    NotWeb,
    #[error("it would go from https to plain http")]
    Downgrade,
    #[error("plain http is only followed within the feed's own host")]
    PlainHttpElsewhere,
    #[error("{0} is a loopback, private or link-local address, and not the feed's own host")]
    NotPublic(IpAddr),
}

/// A redirect that was not followed: where it pointed (scheme, host and port) and why.
#[derive(Debug, thiserror::Error)]
#[error("refused a redirect to {target}: {why}")]
struct RedirectRefused {
    target: String,
    why: Refusal,
}

/// A host name, reached through a redirect, that resolves to an address that is not public.
#[derive(Debug, thiserror::Error)]
#[error("refused to connect to {host}: it resolves to {ip}, a loopback, private or link-local address, and it is not the feed's own host")]
struct NameRefused {
    host: String,
    ip: IpAddr,
}

/// Fetches and parses one feed, reading at most [`MAX_CALENDAR_BYTES`].
pub(super) async fn fetch(source: &CalendarSource, zone: Tz) -> anyhow::Result<Parsed> {
    let CalendarSource::Url(address) = source else {
        bail!("not a feed");
    };
    let name = source.describe();
    let url = feed_url(address).with_context(|| format!("the calendar {name}"))?;
    let client = client_for(&url)?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow!("cannot fetch the calendar {name}: {}", without_urls(e)))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("the calendar {name} answered {status}");
    }
    let too_big = || {
        anyhow!(
            "the calendar {name} is larger than {} MiB, the most a busy calendar may be; it was not read",
            MAX_CALENDAR_BYTES / (1024 * 1024)
        )
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_CALENDAR_BYTES)
    {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| anyhow!("cannot fetch the calendar {name}: {}", without_urls(e)))?
    {
        if (bytes.len() + chunk.len()) as u64 > MAX_CALENDAR_BYTES {
            return Err(too_big());
        }
        bytes.extend_from_slice(&chunk);
    }
    parse_bytes(&bytes, &name, zone)
}

/// The feed's address as it will be fetched: https, or plain http to this machine only.
/// The profile checks this too, but this reading is the one that is connected to
/// (`http://localhost:80@example.com/` is example.com, not this machine).
fn feed_url(address: &str) -> anyhow::Result<Url> {
    let url = Url::parse(address).map_err(|e| anyhow!("not a web address ({e})"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_this_machine(&url) => Ok(url),
        "http" => bail!(
            "{} would be fetched over plain http, which is only allowed to this machine",
            redact(&url)
        ),
        _ => bail!("{} is not an http(s) address", redact(&url)),
    }
}

/// Is the URL's host this machine by name or by a loopback address?
fn is_this_machine(url: &Url) -> bool {
    url.host_str() == Some("localhost") || host_ip(url).is_some_and(|ip| ip.is_loopback())
}

/// The HTTP client for one feed: rustls, timeouts, the redirect rules and the resolver
/// bound to this feed's own host. One per fetch (cheap next to the fetch, once per
/// `calendar_refresh`), so that one feed's host is never "own host" for another feed.
fn client_for(origin: &Url) -> anyhow::Result<reqwest::Client> {
    let start = origin.clone();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        match judge(&start, attempt.previous(), attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(why) => {
                let target = redact(attempt.url());
                attempt.error(RedirectRefused { target, why })
            }
        }
    });
    let resolver = FeedResolver {
        own_host: origin.host_str().unwrap_or_default().to_string(),
    };
    reqwest::Client::builder()
        .redirect(policy)
        .referer(false)
        .no_proxy()
        .dns_resolver(Arc::new(resolver))
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("mailtriage/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client for calendar feeds")
}

/// May a feed that started at `origin` follow a redirect to `next`, having requested
/// `chain` so far (the origin first)? Host names are left to [`FeedResolver`].
fn judge(origin: &Url, chain: &[Url], next: &Url) -> Result<(), Refusal> {
    if chain.len() > MAX_REDIRECTS {
        return Err(Refusal::TooMany);
    }
    // The same host, any port: the owner chose it. A host written differently (localhost
    // and 127.0.0.1) is another host.
    let own_host = next.host_str() == origin.host_str();
    match next.scheme() {
        "https" => {}
        "http" if chain.iter().any(|u| u.scheme() == "https") => return Err(Refusal::Downgrade),
        "http" if !own_host => return Err(Refusal::PlainHttpElsewhere),
        "http" => {}
        _ => return Err(Refusal::NotWeb),
    }
    if own_host {
        return Ok(());
    }
    match host_ip(next) {
        Some(ip) if !is_public(ip) => Err(Refusal::NotPublic(ip)),
        _ => Ok(()),
    }
}

/// The URL's host as an IP address, when it is written as one (the url crate has already
/// normalised forms like `0x7f.1` to `127.0.0.1`).
fn host_ip(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// An address for logs and errors: scheme, host and port only. Feed addresses carry a
/// secret in their path, query or user name.
fn redact(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}/…", url.scheme()),
        None => format!("{}://{host}/…", url.scheme()),
    }
}

/// A reqwest error in words, with its causes and without any address: reqwest writes the
/// whole URL (secret included) into its errors, the causes' too.
fn without_urls(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let part = c.to_string();
        let part = match c.downcast_ref::<reqwest::Error>() {
            Some(_) => part
                .split(" for url (")
                .next()
                .unwrap_or_default()
                .to_string(),
            None => part,
        };
        text.push_str(": ");
        text.push_str(&part);
        cause = c.source();
    }
    text
}

/// Resolves host names for one feed: its own host as the system answers, and any other
/// host (reached through a redirect) only when every address it has is public.
///
/// Why here and not in the redirect policy: the policy is synchronous, so a lookup there
/// would block a runtime thread; and the address it checked need not be the one then
/// connected to, since a name may answer with a public address to the check and with
/// 127.0.0.1 a moment later (DNS rebinding). This resolver *is* the lookup the
/// connection uses, so what is vetted is what is dialled.
///
/// Limits: the feed's own host is not vetted (the owner chose it, and a calendar server
/// on the office network must keep working), so whoever controls its DNS decides where
/// the first request goes. IP literals never reach a resolver (they are judged in
/// [`judge`]). A name with one private address among public ones is refused outright.
struct FeedResolver {
    /// The host of the configured address (lower case, as the url crate writes it).
    own_host: String,
}

impl Resolve for FeedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let vet = !host.eq_ignore_ascii_case(&self.own_host);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if vet {
                if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                    let ip = bad.ip();
                    return Err(Box::new(NameRefused { host, ip }).into());
                }
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Is `ip` an ordinary internet address: not this machine, not a private or link-local
/// network, not unspecified, multicast or another special-purpose block?
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0 // 0.0.0.0/8, "this network": Linux connects 0.0.0.0 to itself
        || ip.is_loopback() // 127.0.0.0/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local() // 169.254/16
        || (a == 100 && (b & 0xc0) == 64) // 100.64/10, carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // 192.0.0.0/24, IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // 198.18/15, benchmarking
        || a >= 224; // multicast, reserved, broadcast
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local() // fc00::/7
        || ip.is_unicast_link_local() // fe80::/10
        || (ip.segments()[0] & 0xffc0) == 0xfec0; // fec0::/10, site-local (deprecated)
    !special
}

/// The IPv4 address an IPv6 address leads to: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`, which includes `::` and `::1`) and NAT64
/// (`64:ff9b::a.b.c.d`) addresses.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [n0, n1, n2, n3, n4, n5, ..] = ip.segments();
    if [n0, n1, n2, n3, n4, n5] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., a, b, c, d] = ip.octets();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    ip.to_ipv4()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn classifies_addresses() {
        #[rustfmt::skip]
        let table: &[(&str, bool)] = &[
            // Public.
            ("93.184.215.14", true),
            ("8.8.8.8", true),
            ("172.15.255.255", true),
            ("172.32.0.1", true),
            ("100.63.255.255", true),
            ("100.128.0.1", true),
            ("169.253.255.255", true),
            ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", true),
            ("2001:4860:4860::8888", true),
            ("::ffff:8.8.8.8", true),
            ("64:ff9b::808:808", true),
            // This machine.
            ("127.0.0.1", false),
            ("127.0.0.2", false),
            ("127.255.255.254", false),
            ("::1", false),
            ("::ffff:127.0.0.1", false),
            ("::127.0.0.1", false),
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("::", false),
            // Private networks (RFC 1918, fc00::/7).
            ("10.0.0.1", false),
            ("10.255.255.255", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("192.168.1.1", false),
            ("::ffff:192.168.1.1", false),
            ("64:ff9b::a00:1", false),
            ("fc00::1", false),
            ("fd12:3456:789a::1", false),
            // Link-local (cloud metadata), site-local.
            ("169.254.169.254", false),
            ("169.254.0.1", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", false),
            // Special-purpose blocks.
            ("100.64.0.1", false),
            ("192.0.0.8", false),
            ("198.18.0.1", false),
            ("224.0.0.1", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            ("ff02::1", false),
        ];
        let wrong: Vec<String> = table
            .iter()
            .filter_map(|(text, public)| {
                let got = text.parse::<IpAddr>().map(is_public);
                (got != Ok(*public)).then(|| format!("{text}: expected {public}, got {got:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn judges_redirects() {
        use Refusal::*;
        let loopback_http = "http://127.0.0.1:8080/private/feed.ics?token=s3cret";
        let loopback_https = "https://localhost:8443/feed.ics";
        let remote = "https://calendar.example.com/feed.ics";
        #[rustfmt::skip]
        let table: &[(&str, &str, Result<(), Refusal>)] = &[
            // The reported case: a remote https feed sends us into this machine.
            (remote, "http://127.0.0.1:6379/anything", Err(Downgrade)),
            (remote, "https://127.0.0.1:6379/anything", Err(NotPublic(ip("127.0.0.1")))),
            (remote, "https://[::1]/x", Err(NotPublic(ip("::1")))),
            (remote, "https://[::ffff:7f00:1]/x", Err(NotPublic(ip("::ffff:127.0.0.1")))),
            (remote, "https://0x7f.1/x", Err(NotPublic(ip("127.0.0.1")))),
            (remote, "https://2130706433/x", Err(NotPublic(ip("127.0.0.1")))),
            (remote, "https://169.254.169.254/latest/meta-data/", Err(NotPublic(ip("169.254.169.254")))),
            (remote, "https://10.1.2.3/x", Err(NotPublic(ip("10.1.2.3")))),
            (remote, "https://[fd00::1]/x", Err(NotPublic(ip("fd00::1")))),
            (remote, "https://[fe80::1]/x", Err(NotPublic(ip("fe80::1")))),
            (remote, "https://0.0.0.0/x", Err(NotPublic(ip("0.0.0.0")))),
            (remote, "http://calendar.example.com/feed.ics", Err(Downgrade)),
            (remote, "ftp://calendar.example.com/feed.ics", Err(NotWeb)),
            // Allowed: public addresses, and names (the resolver vets those).
            (remote, "https://calendar.example.com/v2/feed.ics", Ok(())),
            (remote, "https://cdn.example.net/feed.ics", Ok(())),
            (remote, "https://93.184.215.14/feed.ics", Ok(())),
            (remote, "https://localhost/feed.ics", Ok(())),
            // A feed on this machine keeps working within its own host.
            (loopback_http, "http://127.0.0.1:8080/moved.ics", Ok(())),
            (loopback_http, "http://127.0.0.1:9999/moved.ics", Ok(())),
            (loopback_http, "https://127.0.0.1:8443/moved.ics", Ok(())),
            (loopback_http, "https://calendar.example.com/feed.ics", Ok(())),
            (loopback_https, "https://localhost:8443/moved.ics", Ok(())),
            // ... but not on another host of this machine, nor down to plain http.
            (loopback_http, "http://localhost:8080/moved.ics", Err(PlainHttpElsewhere)),
            (loopback_http, "http://10.0.0.1/moved.ics", Err(PlainHttpElsewhere)),
            (loopback_http, "https://127.0.0.2:8080/moved.ics", Err(NotPublic(ip("127.0.0.2")))),
            (loopback_https, "http://localhost:8443/moved.ics", Err(Downgrade)),
            (loopback_https, "https://127.0.0.1:8443/moved.ics", Err(NotPublic(ip("127.0.0.1")))),
        ];
        let wrong: Vec<String> = table
            .iter()
            .filter_map(|(origin, next, expected)| {
                let origin = url(origin);
                let got = judge(&origin, std::slice::from_ref(&origin), &url(next));
                (got != *expected)
                    .then(|| format!("{origin} → {next}: expected {expected:?}, got {got:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn an_https_hop_anywhere_in_the_chain_forbids_plain_http_after_it() {
        let origin = url("http://127.0.0.1:8080/feed.ics");
        let chain = [origin.clone(), url("https://127.0.0.1:8443/feed.ics")];
        let next = url("http://127.0.0.1:8080/feed.ics");
        assert_eq!(judge(&origin, &chain, &next), Err(Refusal::Downgrade));
    }

    #[test]
    fn at_most_five_redirects() {
        let origin = url("https://calendar.example.com/feed.ics");
        let next = url("https://calendar.example.com/again.ics");
        let mut chain = vec![origin.clone()];
        for hop in 1..=MAX_REDIRECTS {
            assert_eq!(judge(&origin, &chain, &next), Ok(()), "redirect {hop}");
            chain.push(next.clone());
        }
        assert_eq!(judge(&origin, &chain, &next), Err(Refusal::TooMany));
    }

    #[test]
    fn feed_addresses_as_connected_to() {
        for ok in [
            "https://calendar.example.com/feed.ics",
            "http://127.0.0.1:8080/feed.ics",
            "http://localhost/feed.ics",
            "http://[::1]:8080/feed.ics",
        ] {
            assert!(feed_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://calendar.example.com/feed.ics",
            // What a split on ':' reads as localhost port 80 is user "localhost" at example.com.
            "http://localhost:80@example.com/feed.ics",
            "http://127.0.0.1:80@example.com/feed.ics",
            "ftp://127.0.0.1/feed.ics",
            "not an address",
        ] {
            let err = feed_url(bad).map(|_| ()).map_err(|e| format!("{e:#}"));
            assert!(err.is_err(), "{bad}");
        }
    }

    #[test]
    fn redacted_addresses_keep_no_path_query_or_user() {
        let table = [
            (
                "https://calendar.example.com/private-abc123/basic.ics?token=s3cret",
                "https://calendar.example.com/…",
            ),
            (
                "https://user:pw@calendar.example.com:8443/x?y#z",
                "https://calendar.example.com:8443/…",
            ),
            ("http://[::1]:8080/secret", "http://[::1]:8080/…"),
        ];
        for (full, shown) in table {
            assert_eq!(redact(&url(full)), shown);
        }
    }

    #[test]
    fn the_resolver_vets_other_hosts_only() {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("runtime: {e}"),
        };
        let lookup = |own: &str, name: &str| {
            let resolver = FeedResolver {
                own_host: own.to_string(),
            };
            let name: Name = name.parse().unwrap_or_else(|_| panic!("name {name}"));
            rt.block_on(resolver.resolve(name))
                .map(|addrs| addrs.count())
                .map_err(|e| e.to_string())
        };
        // localhost is in /etc/hosts, so no network is needed.
        assert!(matches!(lookup("localhost", "localhost"), Ok(n) if n > 0));
        assert!(matches!(lookup("LOCALHOST", "localhost"), Ok(n) if n > 0));
        let refused = lookup("calendar.example.com", "localhost");
        assert!(
            matches!(&refused, Err(e) if e.contains("refused to connect to localhost: it resolves to")),
            "{refused:?}"
        );
    }
}
