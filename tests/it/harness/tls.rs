//! A test CA and a server certificate, made with the `openssl` CLI (installed with
//! dovecot-core, which depends on it). P-256 keys: generating them takes milliseconds,
//! unlike RSA. By default the certificate is for "localhost" / 127.0.0.1; security
//! tests ask for another name to prove that a wrong host name is refused.

use super::process;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The names of the default server certificate (what the daemon connects to in tests).
pub const DEFAULT_NAMES: &[&str] = &["localhost", "127.0.0.1"];

/// Writes ca.pem, ca.key, server.pem and server.key into `dir`, the server certificate
/// valid for `names` (DNS names or IP addresses; the first is also its CN); returns
/// ca.pem's path.
pub fn make_certs(dir: &Path, names: &[&str]) -> PathBuf {
    assert!(!names.is_empty(), "a certificate needs a name");
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    let san: Vec<String> = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(_) => format!("IP:{n}"),
            Err(_) => format!("DNS:{n}"),
        })
        .collect();
    let ext = format!(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectAltName={}\n",
        san.join(",")
    );
    std::fs::write(dir.join("server.ext"), ext).expect("writing server.ext");
    let p256 = "ec_paramgen_curve:prime256v1";
    let subj = format!("/CN={}", names[0]);
    #[rustfmt::skip]
    let steps: [&[&str]; 3] = [
        &["req", "-x509", "-newkey", "ec", "-pkeyopt", p256, "-nodes", "-keyout", "ca.key",
          "-out", "ca.pem", "-days", "30", "-subj", "/CN=mailtriage test CA",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        &["req", "-newkey", "ec", "-pkeyopt", p256, "-nodes", "-keyout", "server.key",
          "-out", "server.csr", "-subj", &subj],
        &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
          "-CAcreateserial", "-out", "server.pem", "-days", "30", "-extfile", "server.ext"],
    ];
    for args in steps {
        openssl(dir, args);
    }
    dir.join("ca.pem")
}

fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    match process::run(cmd, None, Duration::from_secs(30)) {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("openssl {args:?} failed:\n{}", out.stderr),
        Err(e) => panic!("{e} (the `openssl` CLI comes with dovecot-core; is it installed?)"),
    }
}
