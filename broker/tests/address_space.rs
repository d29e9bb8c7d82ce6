//! Hostile counts and lengths never abort the agent, even where the kernel holds it to its address
//! space (RLIMIT_AS, as on hardened hosts, like strict overcommit): the decoder refuses a count or
//! length the frame cannot hold before it allocates anything. The agent runs as its own process
//! here, under `ulimit -v`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// 2 GiB of address space: plenty for the agent, far below what the hostile frames claim.
const ADDRESS_SPACE_KB: u64 = 2 * 1024 * 1024;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[tokio::test]
async fn hostile_counts_do_not_abort_an_agent_with_limited_address_space() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let command = format!(
        "ulimit -v {ADDRESS_SPACE_KB} && exec {} --data-dir {} --listen 127.0.0.1:{port}",
        env!("CARGO_BIN_EXE_streamhouse"),
        dir.path().display()
    );
    let mut agent = Process(Command::new("sh").arg("-c").arg(command).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn"));
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    while TcpStream::connect(&addr).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "the agent did not start under ulimit -v");
        assert!(agent.0.try_wait().expect("wait").is_none(), "the agent exited at start under ulimit -v");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hostile = [
        // Produce v3 claiming i32::MAX topics.
        frame(&[0, 0, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 10, 0x7f, 0xff, 0xff, 0xff, 0, 1, b'a']),
        // Metadata v9 (flexible) with a compact array count of u32::MAX - 1.
        frame(&[0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        // Metadata v9 with one topic whose compact name claims 4 GiB.
        frame(&[0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]),
    ];
    for bytes in &hostile {
        let mut c = TcpStream::connect(&addr).await.expect("connect");
        c.write_all(bytes).await.ok();
        let mut sink = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(5), c.read(&mut sink)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(agent.0.try_wait().expect("wait").is_none(), "the agent died on a hostile count");
    // And it still answers: ApiVersions v0.
    let mut c = TcpStream::connect(&addr).await.expect("connect");
    c.write_all(&frame(&[0, 18, 0, 0, 0, 0, 0, 9, 0xff, 0xff])).await.expect("write");
    let len = tokio::time::timeout(Duration::from_secs(5), c.read_i32()).await.expect("answer in time").expect("an answer");
    assert!(len > 8);
}
