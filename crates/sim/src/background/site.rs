//! The public web sites: customers' requests and Internet scanners, with their flows.

use super::Background;
use crate::cdr::diurnal;
use crate::clock::HOUR;
use crate::sink::Sink;
use crate::web::{self, Request};
use crate::world::Role;

impl Background<'_> {
    /// An hour of every web server that keeps access logs.
    pub(super) fn web_traffic(&mut self, sink: &mut Sink, t0: i64, lh: u32) {
        let world = self.world;
        for h in world.web_servers() {
            if self.estate.web[h].is_some() {
                self.site_traffic(sink, t0, lh, h);
            }
        }
    }

    /// A day's hour of the public site on web server `h`: customers, and Internet scanners.
    fn site_traffic(&mut self, sink: &mut Sink, t0: i64, lh: u32, h: usize) {
        let world = self.world;
        let host = &world.hosts[h];
        let ext = if host.role == Role::WebIis {
            "aspx"
        } else {
            "jsp"
        };
        let base = if host.role == Role::WebIis {
            "/selfcare"
        } else {
            "/portal"
        };
        let n = self.dice.poisson(40.0 * self.scale * diurnal(lh));
        let pages: [(&str, String, u64); 9] = [
            ("GET", "/".into(), 18_000),
            ("GET", "/css/site.css".into(), 9_500),
            ("GET", "/js/app.js".into(), 61_000),
            ("GET", "/images/logo.png".into(), 7_200),
            ("GET", format!("{base}/login.{ext}"), 12_000),
            ("POST", format!("{base}/login.{ext}"), 3_100),
            ("GET", format!("{base}/balance.{ext}"), 8_800),
            ("GET", format!("{base}/usage.{ext}"), 15_500),
            ("GET", format!("{base}/topup.{ext}"), 10_100),
        ];
        let app_agent = format!("{}SelfCare/3.2 (Android 9)", world.org().short);
        let agents: [&str; 4] = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/73.0.3683.86 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Linux; Android 9; SM-G960F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/72.0.3626.121 Mobile Safari/537.36",
            &app_agent,
        ];
        let referer = format!("https://selfcare.{}/", world.org().dns);
        let front = world.profile.balancer.unwrap_or(&host.ip).to_string();
        for _ in 0..n {
            let t = self.at(t0, HOUR);
            let (method, stem, size) = self.dice.pick(&pages).clone();
            let client = format!(
                "198.18.{}.{}",
                self.dice.below(256),
                1 + self.dice.below(254)
            );
            let agent = *self.dice.pick(&agents);
            let status = if self.dice.chance(0.02) { 304 } else { 200 };
            let req = Request {
                method,
                stem: &stem,
                query: "",
                port: 443,
                user: "",
                client: &client,
                agent,
                referer: if stem == "/" { "" } else { &referer },
                status,
                sc_bytes: size + self.dice.below(500),
                cs_bytes: 400 + self.dice.below(900),
                time_taken_ms: 15 + self.dice.below(300),
            };
            web::log(sink, world, &self.estate.web, self.offset_min, h, t, &req);
            let port = self.dice.range(30_000, 65_000) as u16;
            self.flow(
                sink,
                t,
                (&client, port),
                (&front, 443),
                "tcp",
                "ssl",
                0.4,
                900,
                size + 3000,
            );
        }
        // Internet background scanning: not the campaign, and not worth an alarm.
        for _ in 0..self.dice.poisson(1.5) {
            let t = self.at(t0, HOUR);
            let stem = *self.dice.pick(&[
                "/wp-login.php",
                "/.env",
                "/phpmyadmin/index.php",
                "/admin/config.php",
                "/cgi-bin/luci",
                "/robots.txt",
            ]);
            let client = format!(
                "198.19.{}.{}",
                self.dice.below(256),
                1 + self.dice.below(254)
            );
            let req = Request {
                method: "GET",
                stem,
                query: "",
                port: 443,
                user: "",
                client: &client,
                agent: "Mozilla/5.0 zgrab/0.x",
                referer: "",
                status: 404,
                sc_bytes: 1_245,
                cs_bytes: 180,
                time_taken_ms: 3,
            };
            web::log(sink, world, &self.estate.web, self.offset_min, h, t, &req);
        }
    }
}
