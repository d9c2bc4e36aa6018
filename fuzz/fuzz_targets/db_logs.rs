//! Database audit logs as an attacker's client or a broken export can shape them: PostgreSQL
//! stderr (the prefix detected, or given), csvlog and jsonlog, Oracle and SQL Server audit
//! exports. The first byte picks the format; the rest follows its header.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use towerwatch_sources::postgres::LinePrefix;
use towerwatch_sources::ReadOptions;

const HEADERS: [&[u8]; 6] = [
    b"2019-03-06 18:55:00.300 UTC [4] LOG:  checkpoint starting: time\n",
    b"2019-03-06 18:55:00.300 +03 [4] cdr_ro@cdrdw LOG:  connection authorized: user=cdr_ro database=cdrdw\n",
    b"2019-03-06 18:55:00.300 UTC,\"u\",\"d\",4,\"10.0.0.1:5\",5c7f.4,1,\"SELECT\",2019-03-06 18:50:00 UTC,3/1,0,LOG,00000,\"AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>\",,,,,,,,,\"psql\",\"client backend\",,0\n",
    b"{\"timestamp\":\"2019-03-06 18:55:00.300 UTC\",\"user\":\"u\",\"dbname\":\"d\",\"pid\":4,\"error_severity\":\"LOG\",\"message\":\"x\"}\n",
    b"EVENT_TIMESTAMP,DBUSERNAME,OS_USERNAME,USERHOST,CLIENT_PROGRAM_NAME,ACTION_NAME,OBJECT_SCHEMA,OBJECT_NAME,SQL_TEXT,SQL_BINDS,RETURN_CODE,AUTHENTICATION_TYPE,SESSIONID,STATEMENT_ID\n",
    b"event_time,sequence_number,action_id,succeeded,session_id,server_principal_name,database_name,schema_name,object_name,statement,client_ip,application_name,host_name,additional_information\n",
];

fuzz_target!(|data: &[u8]| {
    let (input, _) = common::with_header(&HEADERS, data);
    common::read_counted(&input, ReadOptions::default());
    // The same with a prefix given (with %q), as --log-line-prefix does.
    let given = ReadOptions {
        log_line_prefix: LinePrefix::new("%m [%p] %q%u@%d ").ok(),
        ..ReadOptions::default()
    };
    common::read_counted(&input, given);
});
