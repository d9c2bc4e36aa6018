//! Web and network logs: W3C (IIS, with X-Forwarded-For), NCSA access logs (common,
//! combined, a configured layout) and Zeek. The first byte picks the format.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use towerwatch_sources::{AccessFormat, ReadOptions};

const HEADERS: [&[u8]; 4] = [
    b"#Version: 1.0\n#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query c-ip cs(User-Agent) sc-status X-Forwarded-For\n",
    b"10.0.0.5 - - [05/Mar/2019:14:16:00 +0000] \"POST /x.jsp HTTP/1.1\" 200 146 \"-\" \"Mozilla\" \"203.0.113.7\"\n",
    b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\n",
    b"",
];

fuzz_target!(|data: &[u8]| {
    let (input, _) = common::with_header(&HEADERS, data);
    common::read_counted(&input, ReadOptions::default());
    let layout = ReadOptions {
        access_log_format: AccessFormat::new("%a %t \"%r\" %>s %b \"%{X-Forwarded-For}i\" %D").ok(),
        ..ReadOptions::default()
    };
    common::read_counted(&input, layout);
});
