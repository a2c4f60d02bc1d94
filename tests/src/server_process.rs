//! A server process of a test's own (a broker) on a fixed free loopback port: started from a
//! command, killed with SIGKILL and started again on the same port, its output appended to a
//! log in a temp folder that outlives restarts, stopped by PID on drop.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started or restarted server may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// One server process; `None` child while stopped.
pub struct ServerProcess {
    /// What messages call it (`nats-server`, `tansu`, …).
    name: String,
    /// Its port on 127.0.0.1 (the same after a restart).
    port: u16,
    /// Its log and whatever else it keeps (a store folder).
    dir: tempfile::TempDir,
    /// The running process, `None` while stopped.
    child: Option<Child>,
}

impl ServerProcess {
    /// A stopped server on a free port; start it with [`ServerProcess::spawn`].
    pub fn on_free_port(name: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Self {
            name: name.to_owned(),
            port,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its folder, kept across restarts.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills it with SIGKILL (no clean shutdown) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -9 {} failed", child.id());
            child.wait().expect("reap the server");
        }
    }

    /// Kills what runs, starts `command` (which must listen on [`ServerProcess::port`]) and
    /// returns once it accepts connections.
    pub fn spawn(&mut self, mut command: Command) {
        self.kill();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("server log");
        let err = out.try_clone().expect("server log");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Its own output, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn wait_ready(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + READY_WITHIN;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{} exited with {status}:\n{}", self.name, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {addr}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}
