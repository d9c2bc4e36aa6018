//! The live service's web UI in a real headless Chromium (Debian's `chromium`, driven over
//! the DevTools protocol): a simulated operator's whole evidence shipped with `towerwatch
//! ship` (Windows events as JSON Lines; IIS, Zeek and the CDR store's PostgreSQL audit as
//! text log lines) gives `hunt`'s detections and operations; a viewer signs in with a token,
//! sees the operations, opens one (graph and timeline drawn), is refused a reveal; an analyst
//! reveals a subscriber, with a reason, and an admin finds it in the audit log. Every page
//! is screenshot at 1400 px (`target/test-artifacts/ui-*.png`) and measured for sideways
//! scrolling.

mod common;

use std::time::Duration;

use common::server::{init, Server};
use common::{artifacts, files_under, text, towerwatch};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};

fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(String::from).collect();
    v.sort();
    v
}

/// The browser's view of the page now: its text.
fn page_text(tab: &Tab) -> String {
    tab.wait_for_element("body")
        .unwrap()
        .get_inner_text()
        .unwrap()
}

/// The page does not scroll sideways at 1400 px; a screenshot of it is written.
fn look(tab: &Tab, name: &str) {
    let wide = tab
        .evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth",
            false,
        )
        .unwrap()
        .value
        .and_then(|v| v.as_i64())
        .unwrap();
    assert!(wide <= 0, "{name} scrolls sideways by {wide} px");
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
    std::fs::write(artifacts().join(format!("ui-{name}.png")), png).unwrap();
}

/// Types `text` into the field `selector`, as the keyboard's text input does (one call;
/// key by key takes a round trip per key).
fn type_into(tab: &Tab, selector: &str, text: &str) {
    tab.wait_for_element(selector).unwrap().click().unwrap();
    tab.send_character(text).unwrap();
}

/// Clicks `selector` and waits for the page it leads to (a new address).
fn click_through(tab: &Tab, selector: &str) {
    let before = tab.get_url();
    tab.wait_for_element(selector).unwrap().click().unwrap();
    let started = std::time::Instant::now();
    while tab.get_url() == before {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{selector} led nowhere from {before}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    tab.wait_until_navigated().unwrap();
    tab.wait_for_element("body").unwrap();
}

fn sign_in(tab: &Tab, base: &str, token: &str) {
    tab.navigate_to(&format!("{base}/ui/operations"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    // Not signed in: the sign-in page.
    assert!(tab.get_url().ends_with("/ui/login"), "{}", tab.get_url());
    type_into(tab, "#token", token);
    click_through(tab, "#sign-in");
    tab.wait_for_element("table#operations").unwrap();
}

fn sign_out(tab: &Tab) {
    click_through(tab, "nav form button");
    tab.wait_for_element("#token").unwrap();
}

/// Asks to reveal the first subscriber of the exposure page, with `reason`.
fn ask_reveal(tab: &Tab, base: &str, reason: &str) -> String {
    tab.navigate_to(&format!("{base}/ui/exposure"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    type_into(tab, "form.reveal input[name=reason]", reason);
    click_through(tab, "form.reveal button");
    page_text(tab)
}

#[test]
fn the_ui_shows_the_story_refuses_a_viewer_a_reveal_and_records_an_analysts() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let s = sim.display().to_string();
    towerwatch(&[
        "simulate", "--days", "9", "--waves", "2", "--scale", "0.3", "--out", &s, "-q",
    ]);
    let key = tmp.path().join("key");
    std::fs::write(&key, "the operator's key, sixteen bytes or more").unwrap();
    let context = [
        "--key-file",
        key.to_str().unwrap(),
        "--assets",
        &format!("{s}/context/assets.csv"),
        "--register",
        &format!("{s}/context/rd_requests.csv"),
        "--cdr",
        &format!("{s}/cdr"),
    ];
    // What `hunt` makes of the whole evidence.
    let hunted = tmp.path().join("d.jsonl");
    let report = tmp.path().join("report");
    let mut args = vec![
        "hunt".to_string(),
        format!("{s}/evidence"),
        "-o".into(),
        hunted.display().to_string(),
        "--report".into(),
        report.display().to_string(),
        "-q".into(),
    ];
    args.extend(context.iter().map(|a| a.to_string()));
    towerwatch(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let data = tmp.path().join("data");
    let admin = init(&data);
    let server = Server::start(&data, &context);
    let base = format!("http://{}", server.addr);
    let shipper = server.issue_token(&admin, "shipper", "ingest");
    let out = towerwatch(&[
        "ship",
        &format!("{s}/evidence"),
        "--to",
        &base,
        "--token",
        &shipper,
        "--state",
        tmp.path().join("ship.json").to_str().unwrap(),
    ]);
    let said = text(&out.stdout);
    assert!(said.contains("0 files skipped"), "{said}");
    let files = files_under(&sim.join("evidence"));
    assert!(said.contains(&format!("{} files", files.len())), "{said}");

    // Text logs and events together give what the hunt gives.
    let (status, got) = server.request("GET", "/api/v1/detections", Some(&admin), &[], b"");
    assert_eq!(status, 200);
    let want = std::fs::read_to_string(&hunted).unwrap();
    assert_eq!(sorted_lines(&text(&got)), sorted_lines(&want));
    let (_, ops) = server.request("GET", "/api/v1/operations", Some(&admin), &[], b"");
    let ops: serde_json::Value = serde_json::from_slice(&ops).unwrap();
    assert_eq!(ops, common::json(&report.join("operations.json")));
    let (_, exposure) = server.request("GET", "/api/v1/exposure", Some(&admin), &[], b"");
    let exposure: serde_json::Value = serde_json::from_slice(&exposure).unwrap();
    assert_eq!(exposure, common::json(&report.join("exposure.json")));
    let first_subscriber = exposure["total"]["subscribers"][0]["subscriber"]
        .as_str()
        .unwrap()
        .to_string();

    let viewer = server.issue_token(&admin, "victor", "viewer");
    let analyst = server.issue_token(&admin, "alice", "analyst");
    let profile = tmp.path().join("profile");
    let browser = Browser::new(LaunchOptions {
        path: Some("chromium".into()),
        sandbox: false,
        window_size: Some((1400, 1600)),
        user_data_dir: Some(profile),
        idle_browser_timeout: Duration::from_secs(120),
        ..LaunchOptions::default()
    })
    .expect("chromium runs (scripts/test.sh installs Debian's chromium when it is missing)");
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(60));

    // A viewer: the operations, one of them, and a reveal refused.
    sign_in(&tab, &base, &viewer);
    let listed = page_text(&tab);
    let op_ids: Vec<&str> = ops["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert!(!op_ids.is_empty());
    for id in &op_ids {
        assert!(listed.contains(id), "{id} not listed: {listed}");
    }
    assert!(listed.contains("victor (viewer)"));
    tab.wait_for_element("#movement-graph .node").unwrap();
    look(&tab, "operations");
    click_through(&tab, "table#operations a");
    assert!(tab
        .get_url()
        .ends_with(&format!("/ui/operations/{}", op_ids[0])));
    tab.wait_for_element("#movement-graph .node").unwrap();
    tab.wait_for_element("#timeline .mark").unwrap();
    tab.wait_for_element("#attack-matrix .hit").unwrap();
    let story = page_text(&tab);
    assert!(story.contains("Root cause"), "{story}");
    look(&tab, "operation");
    let refused = ask_reveal(&tab, &base, "curious");
    assert!(
        refused.contains("The viewer role may not reveal identities"),
        "{refused}"
    );
    sign_out(&tab);

    // An analyst: the reveal works, with its reason.
    sign_in(&tab, &base, &analyst);
    let revealed = ask_reveal(&tab, &base, "case 2019-17, court order 4411");
    let identity = tab
        .wait_for_element("#revealed .identity")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert!(
        identity.len() >= 10 && identity.chars().all(|c| c.is_ascii_digit()),
        "{revealed}"
    );
    // It is the subscriber the simulated actor targeted, by its real number.
    let truth = std::fs::read_to_string(sim.join("truth/campaign.json")).unwrap();
    assert!(
        truth.contains(&identity),
        "{identity} is not in the ground truth"
    );
    assert!(revealed.contains(&first_subscriber), "{revealed}");
    look(&tab, "exposure-revealed");
    // A form that is not this session's page's is refused (CSRF), even with the cookie.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, head, _) = server.exchange(
        "POST",
        "/ui/login",
        None,
        &form,
        format!("token={analyst}").as_bytes(),
    );
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie: {head}"))
        .to_string();
    let with_cookie = [form[0], ("Cookie", cookie.as_str())];
    let forged = format!("csrf=forged&subscriber={first_subscriber}&reason=forged+form");
    let (status, _, body) =
        server.exchange("POST", "/ui/reveal", None, &with_cookie, forged.as_bytes());
    assert_eq!(status, 403, "{}", text(&body));
    assert!(text(&body).contains("CSRF"));
    let (status, _, _) = server.exchange("POST", "/ui/reveal", None, &form, forged.as_bytes());
    assert_eq!(status, 303, "no session: to the sign-in page");
    for (page, name, says) in [
        ("/ui/rules", "rules", "What fired"),
        ("/ui/sources", "sources", "Ingest health"),
    ] {
        tab.navigate_to(&format!("{base}{page}"))
            .unwrap()
            .wait_until_navigated()
            .unwrap();
        assert!(page_text(&tab).contains(says), "{name}");
        look(&tab, name);
    }
    // An analyst may not read the audit log.
    tab.navigate_to(&format!("{base}/ui/audit"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    assert!(page_text(&tab).contains("The analyst role may not do this"));
    sign_out(&tab);

    // An admin reads who revealed what, when and why; and the refused attempt.
    sign_in(&tab, &base, &admin);
    tab.navigate_to(&format!("{base}/ui/audit"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    let log = page_text(&tab);
    assert!(
        log.contains(&format!(
            "alice\treveal\t{first_subscriber} (reason: case 2019-17, court order 4411)"
        )),
        "{log}"
    );
    assert!(log.contains("victor\treveal refused"), "{log}");
    assert!(
        !log.contains(&identity),
        "the audit log holds the identity itself"
    );
    look(&tab, "audit");
    // The ingest page names every source shipped.
    tab.navigate_to(&format!("{base}/ui/sources"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    let sources = page_text(&tab);
    for f in files.iter().take(5) {
        let name = f.display().to_string();
        assert!(sources.contains(&name), "{name} not on the ingest page");
    }
}
