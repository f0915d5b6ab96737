//! A server under test as a child process: spawned (pinned to a CPU through `taskset` when
//! pinning is on), timed from the spawn to its first 200 from discovery, stopped with
//! SIGTERM (SIGKILL when it does not stop in time).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first discovery request.
const START_LIMIT: Duration = Duration::from_secs(120);
/// How long a stopping server may take before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(15);

pub const DISCOVERY: &str = "/.well-known/openid-configuration";

/// What to run: the program, its arguments, its environment (nothing else is inherited but
/// `PATH` and `HOME`), its working folder and where its stderr goes.
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub cpu: Option<usize>,
}

pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Launch {
    fn command(&self) -> Command {
        let mut cmd = match self.cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        cmd.args(&self.args).env_clear();
        for var in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(var) {
                cmd.env(var, v);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir);
        cmd
    }

    /// Starts the server and waits for its first 200 from discovery at `addr`; returns it and
    /// the milliseconds from the spawn to that answer.
    pub fn start(&self, addr: SocketAddr) -> (Server, f64) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        let mut server = Server {
            pid: child.id(),
            child,
            addr,
            log: self.log.clone(),
        };
        loop {
            if discovery_status(addr) == Some(200) {
                break;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "{} exited with {status} before answering; its log:\n{}",
                    self.program.display(),
                    server.log_tail()
                );
            }
            if started.elapsed() > START_LIMIT {
                server.stop();
                panic!(
                    "{} did not answer discovery within {START_LIMIT:?}; its log:\n{}",
                    self.program.display(),
                    server.log_tail()
                );
            }
            pause(Duration::from_millis(1));
        }
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        (server, ms)
    }
}

impl Server {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGTERM, then SIGKILL if it is still running after `STOP_LIMIT`.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            pause(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits `d` of wall-clock time. The benchmark polls real processes (their readiness, their
/// stop, the database's activity), so unlike the project's code it waits on the real clock.
#[allow(clippy::disallowed_methods)]
pub fn pause(d: Duration) {
    std::thread::sleep(d);
}

/// The status of one plain HTTP/1.1 GET of discovery, or `None` when nothing answers yet.
pub fn discovery_status(addr: SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {DISCOVERY} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match s.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    // "HTTP/1.1 200 OK"
    std::str::from_utf8(&head[..got])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A loopback address with a port that was free a moment ago.
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("its address")
}

/// Starts the server `launch_for` describes `runs` times in a row, each on a free port, stops
/// all but the last, and returns the last one with every start time in milliseconds.
pub fn start_repeatedly(
    runs: usize,
    mut launch_for: impl FnMut(SocketAddr) -> Launch,
) -> (Server, Vec<f64>) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for i in 0..runs.max(1) {
        let addr = free_addr();
        let (mut server, ms) = launch_for(addr).start(addr);
        times.push(ms);
        if i + 1 < runs.max(1) {
            server.stop();
        } else {
            last = Some(server);
        }
    }
    (last.expect("at least one start"), times)
}

/// The folder of the reference server.
pub fn reference_dir() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/reference/node-oidc-provider"
    ))
}
