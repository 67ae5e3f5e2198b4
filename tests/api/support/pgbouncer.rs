//! A real PgBouncer (Debian's `pgbouncer` package) in front of the test server, with its default
//! settings but for where it listens, how it authenticates and its pool mode: as a user meets
//! a provider's pooler they cannot configure.

use std::fs;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::postgres::{TestDb, free_port, server_url};

const INSTALL_HINT: &str = "pooler tests need PgBouncer: apt-get install pgbouncer";

/// PgBouncer's `pool_mode`.
#[derive(Clone, Copy, Debug)]
pub enum PoolMode {
    Session,
    Transaction,
}

/// A PgBouncer process, stopped when dropped.
pub struct PgBouncer {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

impl PgBouncer {
    pub fn start(mode: PoolMode) -> Self {
        let server = url::Url::parse(server_url()).expect("the test server's URL");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("pgbouncer-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir_all(&dir).expect("creating PgBouncer's directory");
        let port = free_port();
        let mode = match mode {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        };
        let user = server.username();
        fs::write(dir.join("users.txt"), format!("\"{user}\" \"\"\n")).unwrap();
        fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={} port={}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nunix_socket_dir =\nauth_type = trust\n\
                 auth_file = {}\npool_mode = {mode}\n",
                server.host_str().unwrap_or("127.0.0.1"),
                server.port().unwrap_or(5432),
                dir.join("users.txt").display(),
            ),
        )
        .unwrap();
        let child = as_unprivileged(&dir)
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("pgbouncer.log")).unwrap())
            .spawn()
            .unwrap_or_else(|err| panic!("{INSTALL_HINT}: {err}"));
        let bouncer = Self { child, dir, port };
        bouncer.wait_until_listening();
        bouncer
    }

    /// A URL for `db` through the pooler.
    pub fn url(&self, db: &TestDb) -> String {
        let mut url = url::Url::parse(&db.url).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let log = fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "PgBouncer did not start: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// PgBouncer refuses to run as root: as root, run it as the `postgres` system user.
fn as_unprivileged(dir: &PathBuf) -> Command {
    let binary = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .into_iter()
        .find(|path| fs::metadata(path).is_ok())
        .unwrap_or("pgbouncer");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if !root {
        return Command::new(binary);
    }
    let _ = Command::new("chown")
        .arg("-R")
        .arg("postgres")
        .arg(dir)
        .status();
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--", binary]);
    command
}
