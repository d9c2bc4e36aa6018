//! Sigma log sources (product / category / service) mapped to Windows channels and event
//! ids, following SigmaHQ's own regression runner mapping (`tests/thor.yml`).

use serde::{Deserialize, Serialize};

const SYSMON: &str = "Microsoft-Windows-Sysmon/Operational";

/// The rule's `logsource` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSource {
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
}

/// One place a rule applies: a set of channels (none: any channel) and optionally event ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    pub channels: Option<Vec<String>>,
    pub event_ids: Option<Vec<u32>>,
}

impl Route {
    fn new(channels: &[&str], event_ids: &[u32]) -> Route {
        Route {
            channels: Some(channels.iter().map(|c| c.to_string()).collect()),
            event_ids: (!event_ids.is_empty()).then(|| event_ids.to_vec()),
        }
    }

    /// Whether an event with this channel and id is in the route. Channels compare
    /// case-insensitively (exports differ in case).
    pub fn admits(&self, channel: Option<&str>, event_id: Option<u32>) -> bool {
        let id_ok = match &self.event_ids {
            None => true,
            Some(ids) => event_id.is_some_and(|id| ids.contains(&id)),
        };
        self.admits_channel(channel) && id_ok
    }

    /// Whether the route admits some event of this channel (`None`: an event without one).
    pub fn admits_channel(&self, channel: Option<&str>) -> bool {
        match &self.channels {
            None => true,
            Some(list) => channel.is_some_and(|c| list.iter().any(|l| l.eq_ignore_ascii_case(c))),
        }
    }
}

fn service_channels(service: &str) -> Option<&'static [&'static str]> {
    Some(match service {
        "security" => &["Security"],
        "system" => &["System"],
        "application" => &["Application"],
        "sysmon" => &[SYSMON],
        "powershell" => &[
            "Microsoft-Windows-PowerShell/Operational",
            "PowerShellCore/Operational",
        ],
        "powershell-classic" => &["Windows PowerShell"],
        "ntlm" => &["Microsoft-Windows-NTLM/Operational"],
        "taskscheduler" => &["Microsoft-Windows-TaskScheduler/Operational"],
        "wmi" => &["Microsoft-Windows-WMI-Activity/Operational"],
        "dhcp" => &["Microsoft-Windows-DHCP-Server/Operational"],
        "printservice-admin" => &["Microsoft-Windows-PrintService/Admin"],
        "printservice-operational" => &["Microsoft-Windows-PrintService/Operational"],
        "smbclient-security" => &["Microsoft-Windows-SmbClient/Security"],
        "smbclient-connectivity" => &["Microsoft-Windows-SmbClient/Connectivity"],
        "smbserver-connectivity" => &["Microsoft-Windows-SMBServer/Connectivity"],
        "terminalservices-localsessionmanager" => {
            &["Microsoft-Windows-TerminalServices-LocalSessionManager/Operational"]
        }
        "codeintegrity-operational" => &["Microsoft-Windows-CodeIntegrity/Operational"],
        "applocker" => &[
            "Microsoft-Windows-AppLocker/MSI and Script",
            "Microsoft-Windows-AppLocker/EXE and DLL",
            "Microsoft-Windows-AppLocker/Packaged app-Deployment",
            "Microsoft-Windows-AppLocker/Packaged app-Execution",
        ],
        "msexchange-management" => &["MSExchange Management"],
        "windefend" => &["Microsoft-Windows-Windows Defender/Operational"],
        "firewall-as" => &["Microsoft-Windows-Windows Firewall With Advanced Security/Firewall"],
        "bits-client" => &["Microsoft-Windows-Bits-Client/Operational"],
        "security-mitigations" => &[
            "Microsoft-Windows-Security-Mitigations/Kernel Mode",
            "Microsoft-Windows-Security-Mitigations/User Mode",
        ],
        "diagnosis-scripted" => &["Microsoft-Windows-Diagnosis-Scripted/Operational"],
        "shell-core" => &["Microsoft-Windows-Shell-Core/Operational"],
        "openssh" => &["OpenSSH/Operational"],
        "ldap" => &["Microsoft-Windows-LDAP-Client/Debug"],
        "bitlocker" => &["Microsoft-Windows-BitLocker/BitLocker Management"],
        "vhdmp" => &["Microsoft-Windows-VHDMP/Operational"],
        "appxdeployment-server" => &["Microsoft-Windows-AppXDeploymentServer/Operational"],
        "lsa-server" => &["Microsoft-Windows-LSA/Operational"],
        "appxpackaging-om" => &["Microsoft-Windows-AppxPackaging/Operational"],
        "dns-client" => &["Microsoft-Windows-DNS Client Events/Operational"],
        "dns-server" => &["DNS Server"],
        "dns-server-analytic" => &["Microsoft-Windows-DNSServer/Analytical"],
        "appmodel-runtime" => &["Microsoft-Windows-AppModel-Runtime/Admin"],
        "capi2" => &["Microsoft-Windows-CAPI2/Operational"],
        "certificateservicesclient-lifecycle-system" => {
            &["Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational"]
        }
        "kernel-shimengine" => &[
            "Microsoft-Windows-Kernel-ShimEngine/Operational",
            "Microsoft-Windows-Kernel-ShimEngine/Diagnostic",
        ],
        "application-experience" => &[
            "Microsoft-Windows-Application-Experience/Program-Telemetry",
            "Microsoft-Windows-Application-Experience/Program-Compatibility-Assistant",
        ],
        "ntfs" => &["Microsoft-Windows-Ntfs/Operational"],
        "hyper-v-worker" => &["Microsoft-Windows-Hyper-V-Worker"],
        "kernel-event-tracing" => &["Microsoft-Windows-Kernel-EventTracing"],
        "sense" => &["Microsoft-Windows-SENSE/Operational"],
        "servicebus-client" | "microsoft-servicebus-client" => &[
            "Microsoft-ServiceBus-Client/Admin",
            "Microsoft-ServiceBus-Client/Operational",
        ],
        "iis-configuration" => &["Microsoft-IIS-Configuration/Operational"],
        "driver-framework" => &["Microsoft-Windows-DriverFrameworks-UserMode/Operational"],
        _ => return None,
    })
}

fn category_routes(category: &str) -> Option<Vec<Route>> {
    let sysmon = |ids: &[u32]| vec![Route::new(&[SYSMON], ids)];
    let ps = [
        "Microsoft-Windows-PowerShell/Operational",
        "PowerShellCore/Operational",
    ];
    Some(match category {
        "process_creation" => vec![
            Route::new(&[SYSMON], &[1]),
            Route::new(&["Security"], &[4688]),
        ],
        "file_change" => sysmon(&[2]),
        "network_connection" => sysmon(&[3]),
        "sysmon_status" => sysmon(&[4, 16]),
        "process_termination" => sysmon(&[5]),
        "driver_load" => sysmon(&[6]),
        "image_load" => sysmon(&[7]),
        "create_remote_thread" => sysmon(&[8]),
        "raw_access_thread" => sysmon(&[9]),
        "process_access" => sysmon(&[10]),
        "file_event" => sysmon(&[11]),
        "registry_event" => sysmon(&[12, 13, 14]),
        "registry_add" | "registry_delete" => sysmon(&[12]),
        "registry_set" => sysmon(&[13]),
        "registry_rename" => sysmon(&[14]),
        "create_stream_hash" => sysmon(&[15]),
        "pipe_created" => sysmon(&[17, 18]),
        "wmi_event" => sysmon(&[19, 20, 21]),
        "dns_query" => sysmon(&[22]),
        "file_delete" => sysmon(&[23]),
        "clipboard_change" => sysmon(&[24]),
        "process_tampering" => sysmon(&[25]),
        "file_delete_detected" => sysmon(&[26]),
        "file_block_executable" => sysmon(&[27]),
        "file_block_shredding" => sysmon(&[28]),
        "file_executable_detected" => sysmon(&[29]),
        "sysmon_error" => sysmon(&[255]),
        "ps_module" => vec![Route::new(&ps, &[4103])],
        "ps_script" => vec![Route::new(&ps, &[4104])],
        "ps_classic_start" => vec![Route::new(&["Windows PowerShell"], &[400])],
        "ps_classic_provider_start" => vec![Route::new(&["Windows PowerShell"], &[600])],
        "ps_classic_script" => vec![Route::new(&["Windows PowerShell"], &[800])],
        // Web server access logs (IIS W3C), as the W3C source names their channel.
        "webserver" => vec![Route::new(&["webserver"], &[])],
        "antivirus" => vec![Route::new(
            &["Microsoft-Windows-Windows Defender/Operational"],
            &[
                1006, 1007, 1008, 1009, 1010, 1011, 1012, 1017, 1018, 1019, 1115, 1116,
            ],
        )],
        _ => return None,
    })
}

/// Where a rule with this log source can match, or why towerwatch cannot place it.
pub fn resolve(ls: &LogSource) -> Result<Vec<Route>, String> {
    let product = ls.product.as_deref().map(str::to_ascii_lowercase);
    match product.as_deref() {
        Some("windows") => {}
        // Zeek logs by their `#path`, as the Zeek source names their channel.
        Some("zeek") => {
            return match ls.service.as_deref() {
                Some(svc) => Ok(vec![Route::new(
                    &[format!("zeek/{}", svc.to_ascii_lowercase()).as_str()],
                    &[],
                )]),
                None => Err("product 'zeek' needs a service (conn, dns, http, …)".into()),
            }
        }
        Some(other) => {
            return Err(format!(
                "product '{other}' has no log source mapping yet (windows and zeek only)"
            ))
        }
        None if ls.category.is_none() && ls.service.is_none() => {
            return Err("logsource names no product, category or service".into())
        }
        None => {}
    }
    if let Some(cat) = ls.category.as_deref() {
        return category_routes(&cat.to_ascii_lowercase())
            .ok_or_else(|| format!("no log source mapping for category '{cat}'"));
    }
    if let Some(svc) = ls.service.as_deref() {
        return service_channels(&svc.to_ascii_lowercase())
            .map(|chs| vec![Route::new(chs, &[])])
            .ok_or_else(|| format!("no log source mapping for service '{svc}'"));
    }
    // `product: windows` alone: every Windows event.
    Ok(vec![Route {
        channels: None,
        event_ids: None,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(p: Option<&str>, c: Option<&str>, s: Option<&str>) -> LogSource {
        LogSource {
            product: p.map(Into::into),
            category: c.map(Into::into),
            service: s.map(Into::into),
        }
    }

    #[test]
    fn process_creation_spans_sysmon_and_security() {
        let routes = resolve(&ls(Some("windows"), Some("process_creation"), None)).unwrap();
        assert!(routes
            .iter()
            .any(|r| r.admits(Some("Security"), Some(4688))));
        assert!(routes
            .iter()
            .any(|r| r.admits(Some("microsoft-windows-sysmon/operational"), Some(1))));
        assert!(!routes
            .iter()
            .any(|r| r.admits(Some("Security"), Some(4624))));
    }

    #[test]
    fn unknown_sources_are_refused_with_reason() {
        assert!(resolve(&ls(Some("windows"), Some("file_access"), None))
            .unwrap_err()
            .contains("file_access"));
        assert!(resolve(&ls(Some("linux"), Some("process_creation"), None)).is_err());
        let any = resolve(&ls(Some("windows"), None, None)).unwrap();
        assert!(any[0].admits(Some("Whatever"), None));
    }
}
