//! Sysmon's linker: processes by guid, their files, connections, image loads, handles to
//! other processes, registry values, pipes and name lookups.

use towerwatch_event::Event;

use super::process::{is_hub_image, process_created, ProcessInfo};
use super::web::{is_framework_child, is_web_server};
use super::{digest, digest_folded, file_name, ip_of, is_db_port, is_private, pid, say};
use super::{CreatedIn, Draft, Key, Movement};

pub(super) fn link(e: &Event, d: &mut Draft) {
    let f = |name: &'static str| e.first_str(name).unwrap_or("");
    let guid = f("ProcessGuid");
    let image = f("Image");
    let actor_is_hub = is_hub_image(image) || guid.ends_with("-000000000004}");
    if !guid.is_empty() && !actor_is_hub {
        d.keys.push(Key::Process(digest_folded(guid)));
    }
    match e.event_id {
        Some(1) => {
            let parent = f("ParentImage");
            if is_web_server(parent) && !is_framework_child(image) {
                d.web_child = true;
            } else if !is_hub_image(parent) && !f("ParentProcessGuid").is_empty() {
                d.keys
                    .push(Key::Process(digest_folded(f("ParentProcessGuid"))));
            }
            // The process itself is a key even when its image is a hub (its own events).
            if actor_is_hub && !guid.is_empty() {
                d.keys.push(Key::Process(digest_folded(guid)));
            }
            d.session(f("LogonId"));
            d.file(image);
            if let Some(p) = pid(f("ProcessId")) {
                d.keys.push(Key::PidCreated(p, CreatedIn::Sysmon));
            }
            d.account(f("User"));
            let info = ProcessInfo::new([
                image,
                f("CommandLine"),
                parent,
                f("User"),
                guid,
                f("ParentProcessGuid"),
            ]);
            d.movement = process_created(&mut d.keys, &info);
            d.process = Some(Box::new(info));
        }
        Some(3) => {
            let (src, dst) = (f("SourceIp"), f("DestinationIp"));
            let initiated = f("Initiated") == "true";
            d.remote(src);
            d.remote(dst);
            if !src.is_empty() && !dst.is_empty() {
                d.keys.push(Key::Connection(digest(&[
                    src,
                    f("SourcePort"),
                    dst,
                    f("DestinationPort"),
                ])));
            }
            if initiated && is_db_port(f("DestinationPort")) {
                d.keys.push(Key::Endpoint(digest(&[src, f("SourcePort")])));
                d.keys.push(Key::DbClient(digest(&[src])));
            }
            if initiated {
                if let Some(ip) = ip_of(src).filter(|ip| is_private(ip)) {
                    d.host_ip = Some(ip.into());
                }
                if let Some(ip) = ip_of(dst).filter(|ip| is_private(ip)) {
                    d.movement = Some(Movement::Departure { to: ip.into() });
                }
            }
            say!(
                d,
                "{} connects to {dst}:{}",
                file_name(image),
                f("DestinationPort")
            );
        }
        Some(7) => {
            d.file(f("ImageLoaded"));
            say!(d, "{} loads {}", file_name(image), f("ImageLoaded"));
        }
        Some(8) | Some(10) => {
            let g = f("SourceProcessGUID");
            if !g.is_empty() && !is_hub_image(f("SourceImage")) {
                d.keys.push(Key::Process(digest_folded(g)));
            }
            say!(
                d,
                "{} opens {} ({})",
                file_name(f("SourceImage")),
                file_name(f("TargetImage")),
                f("GrantedAccess")
            );
        }
        Some(11) => {
            let target = f("TargetFilename");
            d.file(target);
            if guid.ends_with("-000000000004}") || f("ProcessId") == "4" {
                // Written by the kernel on behalf of an SMB client.
                d.movement = Some(Movement::Arrival {
                    from: None,
                    how: "file written over SMB",
                });
            }
            say!(d, "{} writes {target}", file_name(image));
        }
        Some(12..=14) => {
            say!(d, "{} sets {}", file_name(image), f("TargetObject"));
            d.file(f("Details"));
        }
        Some(17) | Some(18) => say!(d, "pipe {}", f("PipeName")),
        Some(22) => {
            for ip in f("QueryResults").split(';') {
                d.remote(ip);
            }
            say!(d, "{} resolves {}", file_name(image), f("QueryName"));
        }
        _ => say!(d, "Sysmon {}", e.event_id.unwrap_or(0)),
    }
}
