//! The oversight flags of `regie-server serve`: the break-glass duration in hours (decimals
//! allowed, at least a second, at most 72 hours, default 8), showing worker names to residents,
//! and how long a device may hold its store's key idle (R29).

use std::time::Duration;

use clap::Parser;
use regie_server::config::{Cli, Command, OversightArgs};

fn parse(extra: &[&str]) -> Result<OversightArgs, clap::Error> {
    let args = ["regie-server", "serve"].iter().chain(extra);
    match Cli::try_parse_from(args)?.command {
        Command::Serve(command) => Ok(command.serve.oversight),
        other => panic!("parsed as {other:?}"),
    }
}

#[test]
fn a_break_glass_grant_lasts_eight_hours_unless_configured() {
    let default = parse(&[]).unwrap();
    assert_eq!(default.break_glass, Duration::from_secs(8 * 3600));
    assert!(!default.show_worker_names);
    assert_eq!(
        default.break_glass,
        OversightArgs::default().break_glass,
        "the flag's default and Default agree"
    );
    let half = parse(&["--break-glass-hours", "0.5", "--show-worker-names"]).unwrap();
    assert_eq!(half.break_glass, Duration::from_secs(1800));
    assert!(half.show_worker_names);
    assert_eq!(
        parse(&["--break-glass-hours", "72"]).unwrap().break_glass,
        Duration::from_secs(72 * 3600)
    );
}

#[test]
fn a_break_glass_duration_of_nothing_forever_or_nonsense_is_refused() {
    for bad in ["0", "-1", "72.5", "1000", "acht", "NaN", "inf", "0.0001"] {
        assert!(
            parse(&["--break-glass-hours", bad]).is_err(),
            "{bad} was accepted"
        );
    }
}

#[test]
fn a_device_holds_its_key_fifteen_idle_minutes_unless_configured_in_serve_and_demo() {
    assert_eq!(parse(&[]).unwrap().device_idle_lock_seconds, 900);
    assert_eq!(OversightArgs::default().device_idle_lock_seconds, 900);
    assert_eq!(
        parse(&["--device-idle-lock-seconds", "60"])
            .unwrap()
            .device_idle_lock_seconds,
        60
    );
    for bad in ["0", "-5", "86401", "kwartier"] {
        assert!(
            parse(&["--device-idle-lock-seconds", bad]).is_err(),
            "{bad} was accepted"
        );
    }
    // The demo takes it too (the web app's browser tests lock after a few seconds).
    let demo = Cli::try_parse_from(["regie-server", "demo", "--device-idle-lock-seconds", "8"]);
    match demo.unwrap().command {
        Command::Demo(args) => assert_eq!(args.oversight.device_idle_lock_seconds, 8),
        other => panic!("parsed as {other:?}"),
    }
}
