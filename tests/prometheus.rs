//! The Prometheus textfile, read back with a real exposition-format
//! parser (the `prometheus-parse` crate): every line must parse, every
//! metric must have HELP and TYPE, and the values must say what the fake
//! root holds (golden case 09: Debian, 6.1.0-27 running, -28 installed;
//! case 15: sessions).

use crate::util::bin;
use crate::util::fixture::case_root;
use prometheus_parse::{Scrape, Value};
use std::collections::BTreeSet;
use std::fs;

/// Parses `text`, checking that the lenient parser dropped no sample line
/// (it skips what it cannot read) and that each metric is a documented gauge.
fn parse_strictly(text: &str) -> Scrape {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = Scrape::parse(lines).expect("the textfile parses");
    let sample_lines = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count();
    assert_eq!(scrape.samples.len(), sample_lines, "a line did not parse:\n{text}");
    let typed: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" gauge"))
        .collect();
    for s in &scrape.samples {
        assert!(scrape.docs.contains_key(&s.metric), "{} has no HELP", s.metric);
        assert!(typed.contains(s.metric.as_str()), "{} has no TYPE gauge", s.metric);
        assert!(matches!(s.value, Value::Gauge(_)), "{}: {:?}", s.metric, s.value);
    }
    scrape
}

fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Gauge(v) => v,
            _ => f64::NAN,
        })
        .collect();
    assert_eq!(found.len(), 1, "{metric} {labels:?}: {found:?}");
    found[0]
}

#[test]
fn status_writes_a_textfile_that_parses() {
    let root = case_root("09-kernel-debian-batch");
    fs::create_dir_all(root.path().join("metrics")).unwrap();
    let out = bin(root.path())
        .args(["status", "--textfile", "/metrics/restart-stale.prom"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let text = fs::read_to_string(root.path().join("metrics/restart-stale.prom")).unwrap();
    let m = parse_strictly(&text);
    let unit = |u: &str, action: &str, reason: &str| {
        value(
            &m,
            "restart_stale_stale_unit",
            &[("unit", u), ("action", action), ("reason", reason)],
        )
    };
    assert_eq!(unit("allowed.service", "restart", "allowed-by-admin"), 1.0);
    assert_eq!(unit("dbus.service", "skip", "never-tier"), 1.0);
    assert_eq!(unit("denied.service", "skip", "denied-by-admin"), 1.0);
    assert_eq!(value(&m, "restart_stale_stale_units", &[]), 7.0);
    assert_eq!(value(&m, "restart_stale_init_stale", &[]), 1.0);
    assert_eq!(value(&m, "restart_stale_session_processes", &[]), 1.0);
    assert_eq!(
        value(&m, "restart_stale_reboot_required", &[("reason", "kernel-upgrade")]),
        1.0
    );
    assert_eq!(
        value(&m, "restart_stale_reboot_required", &[("reason", "never-tier-stale")]),
        1.0
    );
    assert_eq!(
        value(&m, "restart_stale_reboot_required", &[("reason", "init-stale")]),
        0.0
    );
    assert_eq!(value(&m, "restart_stale_kernel_status", &[]), 3.0);
    assert_eq!(
        value(&m, "restart_stale_last_run_outcome", &[("outcome", "pending")]),
        1.0
    );
    assert_eq!(
        value(&m, "restart_stale_last_run_outcome", &[("outcome", "error")]),
        0.0
    );
    assert_eq!(value(&m, "restart_stale_last_run_info", &[("mode", "status")]), 1.0);
    assert_eq!(value(&m, "restart_stale_units_restarted", &[]), 0.0);
    assert_eq!(value(&m, "restart_stale_units_failed", &[]), 0.0);
    assert!(value(&m, "restart_stale_last_run_timestamp_seconds", &[]) > 1.7e9);
    assert!(value(&m, "restart_stale_last_run_duration_seconds", &[]) >= 0.0);
    // Atomic: nothing but the file itself is left in the directory.
    assert_eq!(fs::read_dir(root.path().join("metrics")).unwrap().count(), 1);
}

#[test]
fn textfile_goes_to_debians_directory_only_when_it_exists() {
    let root = case_root("10-kernel-fedora-batch");
    bin(root.path()).args(["status"]).output().unwrap();
    let debian = root.path().join("var/lib/prometheus/node-exporter");
    assert!(!debian.exists());
    fs::create_dir_all(&debian).unwrap();
    let out = bin(root.path()).args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let m = parse_strictly(&fs::read_to_string(debian.join("restart-stale.prom")).unwrap());
    assert_eq!(value(&m, "restart_stale_kernel_status", &[]), 3.0);
    assert_eq!(value(&m, "restart_stale_last_run_outcome", &[("outcome", "done")]), 1.0);
}

#[test]
fn a_textfile_that_cannot_be_written_is_only_a_warning() {
    let root = case_root("10-kernel-fedora-batch");
    let out = bin(root.path())
        .args(["status", "--textfile", "/no/such/dir/x.prom"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed to write") && stderr.contains("x.prom"),
        "{stderr}"
    );
}

/// `--textfile` into a directory others can write is refused, with a
/// warning naming it, and the run goes on. The links planted at the
/// temporary names the writer once used (`.restart-stale.prom.PID.tmp`,
/// for the next pids the kernel hands out) point at a root-only file
/// that must come out untouched.
#[test]
fn a_textfile_directory_others_can_write_is_refused_and_no_link_is_followed() {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    let root = case_root("10-kernel-fedora-batch");
    let metrics = root.path().join("metrics");
    fs::create_dir(&metrics).unwrap();
    fs::set_permissions(&metrics, fs::Permissions::from_mode(0o777)).unwrap();
    let victim = root.path().join("victim");
    fs::write(&victim, "secret\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    let next: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    for pid in next + 1..next + 2000 {
        symlink(&victim, metrics.join(format!(".restart-stale.prom.{pid}.tmp"))).unwrap();
    }
    let out = bin(root.path())
        .args(["status", "--textfile", "/metrics/restart-stale.prom"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("refusing to write in {}", metrics.display()))
            && stderr.contains("writable by group or others"),
        "{stderr}"
    );
    assert!(!metrics.join("restart-stale.prom").exists());
    assert_eq!(fs::read_to_string(&victim).unwrap(), "secret\n");
    assert_eq!(fs::metadata(&victim).unwrap().mode() & 0o777, 0o600);
}

/// Sessions are counted, never labelled by user or session (the series
/// would grow with every login): golden case 15 has five sessions and user
/// managers of three users, and two stale processes in containers.
#[test]
fn stale_sessions_are_counted_without_user_labels() {
    let root = case_root("15-sessions");
    let out = bin(root.path())
        .args(["status", "--textfile", "/s.prom"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = fs::read_to_string(root.path().join("s.prom")).unwrap();
    let m = parse_strictly(&text);
    assert_eq!(value(&m, "restart_stale_session_processes", &[]), 8.0);
    assert_eq!(value(&m, "restart_stale_stale_sessions", &[]), 5.0);
    assert_eq!(value(&m, "restart_stale_stale_session_users", &[]), 3.0);
    assert!(!text.contains("alice") && !text.contains("user=\""), "{text}");
}
