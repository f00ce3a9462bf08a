//! Metrics for Prometheus: the renderer's golden files and real JVMs
//! (`jmcmd <pid> metrics`, the `metrics=` endpoint, a real Prometheus
//! scraping it), checked by the tools users have: `promtool check metrics`
//! (Debian `prometheus`) and the strict OpenMetrics parser of Python's
//! `prometheus-client` (installed by `.ci/run` into `target/python`).

use std::io::Write;
use std::process::{Command, Stdio};

use jmagent_tests::*;

/// Runs `command` with `input` on its stdin: its exit status and what it
/// printed (stdout, then stderr).
fn pipe(mut command: Command, input: &str) -> (bool, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

/// `promtool check metrics` over `text` (`apt-get install prometheus`).
fn promtool(text: &str) -> (bool, String) {
    let mut c = Command::new("promtool");
    c.args(["check", "metrics"]);
    pipe(c, text)
}

/// The strict OpenMetrics parser of `prometheus-client` over `text`,
/// running `script` (which reads stdin).
fn python(script: &str, text: &str) -> (bool, String) {
    let libs = workspace_root().join("target/python");
    assert!(
        libs.join("prometheus_client").is_dir(),
        "{} lacks prometheus-client: run .ci/run's pip install",
        libs.display()
    );
    let mut c = Command::new("python3");
    c.arg("-c").arg(script).env("PYTHONPATH", &libs);
    pipe(c, text)
}

/// A golden file of the renderer (`render::golden`).
fn golden(name: &str) -> String {
    let path = workspace_root()
        .join("native/jmagent-core/tests/fixtures/render")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn promtool_finds_nothing_to_lint_in_the_golden_files() {
    for name in ["full", "partial", "bare"] {
        let (ok, said) = promtool(&golden(&format!("{name}.prom")));
        assert!(ok && said.trim().is_empty(), "{name}.prom: {said}");
        // promtool reads the 0.0.4 format: in OpenMetrics a counter's
        // metadata names the family without `_total` and its sample with
        // it, which promtool takes for a series without HELP. That is its
        // one complaint.
        let (_, said) = promtool(&golden(&format!("{name}.om")));
        assert_eq!(
            said.trim(),
            "jmagent_trim_released_bytes_total no help text",
            "{name}.om"
        );
    }
}

#[test]
fn the_strict_openmetrics_parser_accepts_the_golden_files() {
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
from prometheus_client.parser import text_string_to_metric_families as p4
both = json.load(sys.stdin)
fams = {f.name: f for f in om(both["om"])}
prom = {f.name: f for f in p4(both["prom"])}
assert fams["jmagent_trim_released_bytes"].type == "counter", fams
assert fams["jmagent_rss_bytes"].unit == "bytes", fams
assert set(fams) == set(prom), set(fams) ^ set(prom)
for f in fams.values():
    assert f.documentation, f.name
print(len(fams))
"#;
    for (name, families) in [("full", 13), ("partial", 12), ("bare", 7)] {
        let both = serde_json::json!({
            "om": golden(&format!("{name}.om")),
            "prom": golden(&format!("{name}.prom")),
        });
        let (ok, said) = python(script, &both.to_string());
        assert!(ok, "{name}: {said}");
        assert_eq!(said.trim(), families.to_string(), "{name}");
    }
}

/// The value of the one sample named `series` (with its labels, exactly
/// as written: `jmagent_verdict{id="heap_growth"}`).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .parse()
        .unwrap_or_else(|e| panic!("{series}: {e}"))
}

fn jmcmd(args: &[&str]) -> String {
    let out = Command::new(jmcmd_path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("jmcmd runs");
    assert!(
        out.status.success(),
        "jmcmd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A JVM with the agent (no periodic reports) holding 64 MiB of direct
/// buffers: `jmcmd <pid> metrics` prints Prometheus text that promtool
/// finds nothing to lint in, whose RSS is the JVM's VmRSS within 10% (the
/// two reads are a few milliseconds apart; the JVM is idle), whose direct
/// buffer bucket holds the 64 MiB within 1 MiB, with every verdict's series
/// at 0 and a trim counter that the trims in between never lower.
#[test]
fn jmcmd_metrics_from_a_running_jvm() {
    each_jdk(|major| {
        let what = format!("JDK {major}");
        let mut jvm = Run::workload(major, &format!("metrics-jmcmd-{major}"))
            .agent_options(Some("interval=0"))
            .arg("direct=64")
            .arg("seconds=60")
            .spawn();
        jvm.wait_for_line("ready");
        let pid = jvm.pid();
        let p = pid.to_string();
        let text = jmcmd(&[&p, "metrics"]);
        let rss = vm_rss(pid);
        let (clean, said) = promtool(&text);
        assert!(
            clean && said.trim().is_empty(),
            "{what}: promtool: {said}\n{text}"
        );
        assert_within(
            &format!("{what}: jmagent_rss_bytes vs VmRSS"),
            value(&text, "jmagent_rss_bytes") as u64,
            rss,
            0.10,
        );
        let direct = value(
            &text,
            "jmagent_bucket_bytes{bucket=\"direct_buffers\",parent=\"malloc_in_use\"}",
        ) as u64;
        assert!(
            direct.abs_diff(64 << 20) <= 1 << 20,
            "{what}: direct buffers {direct}"
        );
        for id in [
            "allocator_fragmentation",
            "heap_growth",
            "container_headroom_low",
        ] {
            assert_eq!(
                value(&text, &format!("jmagent_verdict{{id=\"{id}\"}}")),
                0.0,
                "{what}"
            );
        }
        let before = value(&text, "jmagent_trim_released_bytes_total");
        jmcmd(&[&p, "trim"]);
        jmcmd(&[&p, "trim"]);
        let after = value(
            &jmcmd(&[&p, "metrics"]),
            "jmagent_trim_released_bytes_total",
        );
        assert!(after >= before, "{what}: trim counter {before} -> {after}");
        // SAFETY: our child; SIGTERM lets it write the final report.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        jvm.wait();
    });
}

/// A port no one listens on now (the system's choice, released at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP request to the endpoint: (status line, headers, body).
fn http(port: u16, request: &str) -> (String, String, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the endpoint listens");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_string(), body.to_string())
}

fn get(port: u16, path: &str, accept: Option<&str>) -> (String, String, String) {
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{accept}\r\n"),
    )
}

/// The number of families the strict OpenMetrics parser reads in `text`.
fn openmetrics_families(text: &str) -> usize {
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as om\nprint(len(list(om(sys.stdin.read()))))";
    let (ok, said) = python(script, text);
    assert!(ok, "the OpenMetrics parser refused it: {said}\n{text}");
    said.trim().parse().unwrap()
}

/// `metrics=PORT` on JDK 17 and 25: both formats by `Accept` (OpenMetrics
/// accepted by the strict parser and ending in `# EOF`; 0.0.4 clean under
/// promtool), `HEAD`, 404 and 405, RSS within 10% of VmRSS, and a client
/// that connects and sends nothing holds the endpoint at most its
/// 5-second deadline while the sampler keeps writing reports.
#[test]
fn the_endpoint_serves_both_formats_and_refuses_the_rest() {
    for major in [17, 25] {
        let what = format!("JDK {major}");
        let port = free_port();
        let run = Run::workload(major, &format!("metrics-endpoint-{major}"));
        let log = run.dir().join("report.jsonl");
        let mut jvm = run
            .agent_options(Some(&format!(
                "interval=500ms,format=json,jmx=off,metrics={port},log={}",
                log.display()
            )))
            .arg("direct=32")
            .arg("seconds=60")
            .spawn();
        jvm.wait_for_line("ready");
        let pid = jvm.pid();
        let scraper =
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let (status, headers, om) = get(port, "/metrics", Some(scraper));
        assert_eq!(status, "HTTP/1.1 200 OK", "{what}");
        assert!(
            headers.contains(
                "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"
            ),
            "{what}: {headers}"
        );
        assert!(om.ends_with("# EOF\n"), "{what}: {om}");
        assert!(openmetrics_families(&om) >= 12, "{what}");
        assert_within(
            &format!("{what}: jmagent_rss_bytes vs VmRSS"),
            value(&om, "jmagent_rss_bytes") as u64,
            vm_rss(pid),
            0.10,
        );
        let (status, headers, text) = get(port, "/metrics?x=1", None);
        assert_eq!(status, "HTTP/1.1 200 OK", "{what}");
        assert!(
            headers.contains("Content-Type: text/plain; version=0.0.4"),
            "{what}: {headers}"
        );
        let (clean, said) = promtool(&text);
        assert!(clean && said.trim().is_empty(), "{what}: promtool: {said}");
        let (status, headers, body) = http(port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            status.ends_with("200 OK") && body.is_empty(),
            "{what}: {status} {body}"
        );
        assert!(headers.contains("Content-Length: "), "{what}: {headers}");
        assert!(get(port, "/", None).0.ends_with("404 Not Found"), "{what}");
        let (status, headers, _) = http(
            port,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(
            status.ends_with("405 Method Not Allowed") && headers.contains("Allow: GET, HEAD"),
            "{what}"
        );
        assert!(
            http(port, "NONSENSE\r\n\r\n")
                .0
                .ends_with("400 Bad Request"),
            "{what}"
        );
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
        assert!(http(port, &huge).0.contains("431"), "{what}");
        // A client that connects and says nothing.
        let reports_before = std::fs::read_to_string(&log).unwrap().lines().count();
        let idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let started = std::time::Instant::now();
        let (status, _, _) = get(port, "/metrics", None);
        let waited = started.elapsed();
        assert_eq!(status, "HTTP/1.1 200 OK", "{what}");
        assert!(
            waited <= std::time::Duration::from_secs(8),
            "{what}: an idle client held the endpoint {waited:?}"
        );
        drop(idle);
        let reports_after = std::fs::read_to_string(&log).unwrap().lines().count();
        assert!(
            reports_after >= reports_before + (waited.as_millis() / 500) as usize / 2,
            "{what}: {reports_before} -> {reports_after} reports in {waited:?}"
        );
        // SAFETY: our child; SIGTERM lets it write the final report.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let out = jvm.wait();
        assert!(
            out.stderr.contains(&format!(
                "jmagent: serving metrics on http://127.0.0.1:{port}/metrics"
            )),
            "{what}: {}",
            out.stderr
        );
        out.assert_clean_jni();
    }
}

/// A port in use, and a host that does not resolve: the JVM does not
/// start, and says why in one line.
#[test]
fn a_port_in_use_or_a_bad_host_stops_the_jvm() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for (option, expected) in [
        (
            format!("metrics={port}"),
            format!("jmagent: cannot serve metrics on 127.0.0.1:{port}: Address already in use"),
        ),
        (
            "metrics=no-such-host.invalid:9464".to_string(),
            "jmagent: cannot serve metrics on no-such-host.invalid:9464: cannot resolve host 'no-such-host.invalid'".to_string(),
        ),
    ] {
        let out = Run::workload(17, "metrics-refused")
            .agent_options(Some(&format!("jmx=off,{option}")))
            .run();
        assert_ne!(out.code, Some(0), "{option}: the JVM started");
        let ours: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("jmagent:")).collect();
        assert_eq!(ours.len(), 1, "{option}: {}", out.stderr);
        assert!(ours[0].starts_with(&expected), "{option}: {}", ours[0]);
        assert!(!out.stdout.contains("ready"), "{option}: the workload ran");
    }
    drop(taken);
}

/// A real Prometheus (Debian's) scrapes a JVM with the agent every second;
/// its HTTP API returns `jmagent_rss_bytes` within 10% of the JVM's VmRSS.
#[test]
fn a_real_prometheus_scrapes_the_endpoint() {
    let (port, prom_port) = (free_port(), free_port());
    let run = Run::workload(17, "metrics-prometheus");
    let dir = run.dir().to_path_buf();
    let mut jvm = run
        .agent_options(Some(&format!(
            "interval=1s,jmx=off,metrics={port},log={}",
            dir.join("report.log").display()
        )))
        .arg("direct=32")
        .arg("seconds=90")
        .timeout(std::time::Duration::from_secs(120))
        .spawn();
    jvm.wait_for_line("ready");
    let pid = jvm.pid();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: jmagent\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.err")).unwrap())
        .spawn()
        .expect("prometheus is missing: apt-get install prometheus");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut last = String::new();
    let scraped = loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let (status, _, body) = match std::net::TcpStream::connect(("127.0.0.1", prom_port)) {
            Ok(_) => get(prom_port, "/api/v1/query?query=jmagent_rss_bytes", None),
            Err(_) => (String::new(), String::new(), String::new()),
        };
        if status.ends_with("200 OK") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if let Some(value) = v["data"]["result"][0]["value"][1].as_str() {
                break value.parse::<f64>().unwrap();
            }
            last = body;
        }
        if std::time::Instant::now() > deadline {
            let _ = prometheus.kill();
            panic!(
                "Prometheus returned no jmagent_rss_bytes in 60 s: {last}\n{}",
                std::fs::read_to_string(dir.join("prometheus.err")).unwrap_or_default()
            );
        }
    };
    let rss = vm_rss(pid);
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    println!("Prometheus: jmagent_rss_bytes {scraped}, VmRSS {rss}");
    assert_within(
        "Prometheus' jmagent_rss_bytes vs VmRSS",
        scraped as u64,
        rss,
        0.10,
    );
    // SAFETY: our child; SIGTERM lets it write the final report.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    jvm.wait();
}

/// Without periodic reports (`interval=0`), 100 scrapes over 6 s or more
/// take at most one fresh sample a second (plus the first; in fact one per
/// 5 s, the freshness bound): the final report's sequence number counts
/// every sample the agent took.
#[test]
fn scrapes_take_at_most_one_sample_a_second() {
    let port = free_port();
    let run = Run::workload(17, "metrics-rate");
    let log = run.dir().join("report.jsonl");
    let mut jvm = run
        .agent_options(Some(&format!(
            "interval=0,format=json,jmx=off,metrics={port},log={}",
            log.display()
        )))
        .arg("seconds=60")
        .spawn();
    jvm.wait_for_line("ready");
    let pid = jvm.pid();
    let started = std::time::Instant::now();
    for _ in 0..100 {
        assert_eq!(get(port, "/metrics", None).0, "HTTP/1.1 200 OK");
        std::thread::sleep(std::time::Duration::from_millis(60));
    }
    let seconds = started.elapsed().as_secs_f64();
    // SAFETY: our child; SIGTERM lets it write the final report.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let out = jvm.wait();
    let last = out.final_report();
    let samples = last["sequence"].as_u64().unwrap() - 1;
    println!("100 scrapes in {seconds:.1} s: {samples} samples");
    assert!(
        samples as f64 <= seconds.ceil() + 1.0,
        "{samples} samples for 100 scrapes in {seconds:.1} s"
    );
}
