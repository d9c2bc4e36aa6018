//! Web servers: the access-log linker (a request belongs to the server that answered it), and
//! the images of web servers and of their ordinary children, which the process linkers and
//! the web-shell join ask about.

use towerwatch_event::Event;

use super::{file_name, say, Draft, Hosts};

/// A request in a web server's access log: its client, if outside.
pub(super) fn link(e: &Event, d: &mut Draft, hosts: &mut Hosts) {
    let f = |name: &'static str| e.first_str(name).unwrap_or("");
    d.web_request = true;
    let client = f("c-ip");
    d.remote(client);
    d.host = hosts.get(e.first_str("s-ip").or(e.computer.as_deref()).unwrap_or(""));
    say!(
        d,
        "{} {} {} from {client}",
        f("cs-method"),
        f("cs-uri-stem"),
        f("sc-status")
    );
}

/// Web and application servers whose children are the first sign of a web shell.
pub fn is_web_server(image: &str) -> bool {
    let name = file_name(image).to_ascii_lowercase();
    matches!(
        name.as_str(),
        "w3wp.exe"
            | "java.exe"
            | "javaw.exe"
            | "beasvc.exe"
            | "httpd.exe"
            | "php-cgi.exe"
            | "umworkerprocess.exe"
    ) || name.starts_with("tomcat")
}

/// What web servers start in their normal work (ASP.NET compiling a page), not a shell.
pub(crate) fn is_framework_child(image: &str) -> bool {
    matches!(
        file_name(image).to_ascii_lowercase().as_str(),
        "csc.exe"
            | "vbc.exe"
            | "cvtres.exe"
            | "aspnet_compiler.exe"
            | "conhost.exe"
            | "werfault.exe"
    )
}
