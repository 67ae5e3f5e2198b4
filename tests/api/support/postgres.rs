//! A real PostgreSQL for the tests: the server named by `DATABASE_URL`, or else a throwaway
//! cluster started from PostgreSQL's server binaries and kept under `target/tmp/postgres` for
//! later runs. Each test then gets a fresh, migrated database of its own, dropped at the end:
//! a copy of a template migrated once per build of the schema, rather than migrated anew.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};
use stack_sync::store::schema;

const INSTALL_HINT: &str = "tests need PostgreSQL: set DATABASE_URL to a server where the user \
    may create databases, or install PostgreSQL's server binaries (initdb, pg_ctl; Debian/Ubuntu: \
    apt-get install postgresql, macOS: brew install postgresql)";

/// A database of its own for one test, dropped when the test ends.
pub struct TestDb {
    pub pool: PgPool,
    /// A URL for this database, for the service binary.
    pub url: String,
    name: String,
}

impl TestDb {
    /// A new database with the schema migrated: a copy of the migrated template.
    pub async fn new() -> Self {
        Self::create(Some(migrated_template().await)).await
    }

    /// A new database with nothing in it, as a first deployment finds it.
    pub async fn empty() -> Self {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> Self {
        let server = server_url();
        let name = format!("stack_sync_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(server).await.expect(INSTALL_HINT);
        let create = match template {
            Some(template) => format!("create database {name} template {template}"),
            None => format!("create database {name}"),
        };
        create_database(&mut admin, &create).await;
        let mut url = url::Url::parse(server).expect("DATABASE_URL is a URL");
        url.set_path(&name);
        let url = url.to_string();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(&url)
            .await
            .expect("connecting to the test database");
        Self { pool, url, name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot block on its own futures.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(server_url()).await {
                    let sql = format!("drop database if exists {name} with (force)");
                    let _ = admin.execute(AssertSqlSafe(sql)).await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// Runs `create database`, retrying while the template is in use: Postgres copies a template
/// only when nobody is connected to it, and its autovacuum may be, for a moment.
async fn create_database(admin: &mut PgConnection, create: &str) {
    for attempt in 1.. {
        match admin.execute(AssertSqlSafe(create.to_owned())).await {
            Ok(_) => return,
            Err(sqlx::Error::Database(err))
                if err.code().as_deref() == Some("55006") && attempt < 50 =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(err) => panic!("creating a test database: {err}"),
        }
    }
}

/// The name of a database migrated by this build's migrations and functions, made once: by the
/// first test of a run to ask, under an advisory lock so that concurrent test processes wait for
/// it. Built under a temporary name and renamed when complete, so that a run cut short never
/// leaves a half-migrated template; templates of other builds are dropped.
async fn migrated_template() -> &'static str {
    static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TEMPLATE.get_or_init(make_template).await
}

/// Held by the one test process that builds templates ("stacktpl" in ASCII).
const TEMPLATE_LOCK: i64 = 0x7374_6163_6b74_706c;

async fn make_template() -> String {
    let mut hasher = Sha256::new();
    for migration in schema::MIGRATOR.iter() {
        hasher.update(&migration.checksum);
    }
    hasher.update(schema::functions_digest());
    let digest = format!("{:x}", hasher.finalize());
    let name = format!("stack_sync_template_{}", &digest[..16]);
    let mut admin = PgConnection::connect(server_url())
        .await
        .expect(INSTALL_HINT);
    sqlx::query("select pg_advisory_lock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut admin)
        .await
        .unwrap();
    let existing: Vec<String> = sqlx::query_scalar(
        "select datname from pg_database where datname like 'stack\\_sync\\_template\\_%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    if !existing.contains(&name) {
        for other in &existing {
            let drop = format!("drop database if exists {other} with (force)");
            admin.execute(AssertSqlSafe(drop)).await.unwrap();
        }
        let building = format!("{name}_building");
        // Left by a run cut short while building.
        let drop = format!("drop database if exists {building} with (force)");
        admin.execute(AssertSqlSafe(drop)).await.unwrap();
        let create = format!("create database {building}");
        admin.execute(AssertSqlSafe(create)).await.unwrap();
        let mut url = url::Url::parse(server_url()).expect("DATABASE_URL is a URL");
        url.set_path(&building);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(url.as_str())
            .await
            .expect("connecting to the template");
        schema::migrate(&pool)
            .await
            .expect("migrating the template");
        pool.close().await;
        let rename = format!("alter database {building} rename to {name}");
        admin.execute(AssertSqlSafe(rename)).await.unwrap();
    }
    sqlx::query("select pg_advisory_unlock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut admin)
        .await
        .unwrap();
    name
}

/// The URL of the server that test databases are created on.
pub fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => throwaway_cluster(),
    })
}

/// Starts (or finds running) a cluster private to this checkout and returns its URL.
fn throwaway_cluster() -> String {
    let bin = server_binaries().unwrap_or_else(|| panic!("{INSTALL_HINT}"));
    // One cluster per set of binaries, so that runs against several majors keep each their own.
    let name = match std::env::var_os(BINARIES_VARIABLE) {
        Some(_) => format!("postgres-{}", major_version(&bin)),
        None => "postgres".to_owned(),
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    fs::create_dir_all(&dir).expect("creating target/tmp/postgres");
    // Several test processes (cargo nextest) may start at once: one of them sets up the cluster.
    let lock = File::create(dir.join("lock")).expect("creating the cluster lock file");
    lock.lock().expect("locking the test cluster");
    let data = dir.join("data");
    let port_file = dir.join("port");
    let as_user = cluster_user();
    if !data.join("PG_VERSION").exists() {
        init_cluster(&bin, &dir, &as_user);
    }
    let running = command(&bin.join("pg_ctl"), &as_user)
        .arg("status")
        .arg("-D")
        .arg(&data)
        .output()
        .is_ok_and(|out| out.status.success());
    if !running {
        let port = free_port();
        start_cluster(&bin, &dir, port, &as_user, false);
        fs::write(&port_file, port.to_string()).expect("writing the cluster's port");
    }
    let port = fs::read_to_string(&port_file).expect("reading the cluster's port");
    format!("postgres://postgres@127.0.0.1:{}/postgres", port.trim())
}

/// `initdb` of a trusting, UTF-8 cluster in `dir/data`, owned by `as_user`.
fn init_cluster(bin: &Path, dir: &Path, as_user: &Option<String>) {
    if let Some(user) = as_user {
        run(Command::new("chown").arg("-R").arg(user).arg(dir));
    }
    let mut initdb = command(&bin.join("initdb"), as_user);
    run(initdb
        .args([
            "--auth=trust",
            "--username=postgres",
            "--no-sync",
            "--encoding=UTF8",
            "-D",
        ])
        .arg(dir.join("data")));
}

/// Starts the cluster in `dir/data` on loopback `port`, tuned for tests, and waits until it
/// accepts connections. Without fsync, data survives a server crash but not a machine crash;
/// `synchronous_commit` says whether a commit is acknowledged only once its WAL is written,
/// which a test that crashes the server needs, as production has it.
fn start_cluster(
    bin: &Path,
    dir: &Path,
    port: u16,
    as_user: &Option<String>,
    synchronous_commit: bool,
) {
    let synchronous_commit = if synchronous_commit { "on" } else { "off" };
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off \
         -c synchronous_commit={synchronous_commit} -c full_page_writes=off \
         -c max_connections=200"
    );
    run(command(&bin.join("pg_ctl"), as_user)
        .args(["start", "-w", "-D"])
        .arg(dir.join("data"))
        .arg("-l")
        .arg(dir.join("server.log"))
        .arg("-o")
        .arg(options));
}

/// A cluster of a test's own, which it may stop hard and start again (same port, same data) to
/// play a database outage. Removed when dropped.
pub struct PrivateCluster {
    bin: PathBuf,
    dir: PathBuf,
    as_user: Option<String>,
    pub port: u16,
}

impl PrivateCluster {
    pub fn start() -> Self {
        let cluster = Self::init();
        cluster.resume();
        cluster
    }

    /// A cluster that accepts TLS connections only (`hostssl` lines alone in `pg_hba.conf`),
    /// serving the certificate `server.crt` of [`Certificates`] in its directory.
    pub fn start_tls_only() -> (Self, Certificates) {
        let cluster = Self::init();
        let certificates = Certificates::issue(&cluster.dir.join("certs"));
        let data = cluster.dir.join("data");
        for name in ["server.crt", "server.key"] {
            fs::copy(certificates.dir.join(name), data.join(name))
                .expect("copying the certificate");
        }
        fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .expect("writing pg_hba.conf");
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("opening postgresql.conf");
        std::io::Write::write_all(
            &mut conf,
            b"ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
        )
        .expect("turning on ssl");
        if let Some(user) = &cluster.as_user {
            run(Command::new("chown").arg("-R").arg(user).arg(&data));
        }
        run(Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key")));
        cluster.resume();
        (cluster, certificates)
    }

    fn init() -> Self {
        let bin = server_binaries().unwrap_or_else(|| panic!("{INSTALL_HINT}"));
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cluster-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir_all(&dir).expect("creating the cluster's directory");
        let cluster = Self {
            bin,
            dir,
            as_user: cluster_user(),
            port: free_port(),
        };
        init_cluster(&cluster.bin, &cluster.dir, &cluster.as_user);
        cluster
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Kills the server as a crash or a lost host would: no checkpoint, connections cut.
    pub fn stop_hard(&self) {
        run(command(&self.bin.join("pg_ctl"), &self.as_user)
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.dir.join("data")));
    }

    /// Starts it again after [`stop_hard`](Self::stop_hard); it recovers from its WAL.
    pub fn resume(&self) {
        start_cluster(&self.bin, &self.dir, self.port, &self.as_user, true);
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = command(&self.bin.join("pg_ctl"), &self.as_user)
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .output();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A test CA, a server certificate it signed for `localhost` only, and a second CA that signed
/// nothing the server shows; made with the `openssl` command.
pub struct Certificates {
    pub dir: PathBuf,
}

impl Certificates {
    fn issue(dir: &Path) -> Self {
        fs::create_dir_all(dir).expect("creating the certificates' directory");
        let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(dir).args(args));
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let subject = format!("/CN=stack-sync test {ca}");
            let (key_file, cert_file) = (format!("{ca}.key"), format!("{ca}.crt"));
            let mut args = vec!["req", "-x509", "-days", "2", "-subj", &subject];
            args.extend(key);
            args.extend(["-keyout", &key_file, "-out", &cert_file]);
            args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
            args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            openssl(&args);
        }
        let mut request = vec!["req", "-subj", "/CN=localhost", "-keyout", "server.key"];
        request.extend(key);
        request.extend(["-out", "server.csr"]);
        openssl(&request);
        fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("writing the certificate's extensions");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The path of one of the files, as a URL parameter takes it.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// Names the directory of the server binaries to test against (`scripts/postgres-binaries`
/// installs any supported major), in place of the ones found on the machine.
const BINARIES_VARIABLE: &str = "TEST_POSTGRES_BIN";

/// Where `initdb` and `pg_ctl` are: where `TEST_POSTGRES_BIN` says, or else on the
/// PATH, or in Debian's versioned directories.
fn server_binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(BINARIES_VARIABLE) {
        return Some(PathBuf::from(dir));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>());
    let debian = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin"));
    on_path
        .chain(debian)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

/// The major version of the server in `bin`, from `pg_ctl --version` ("pg_ctl (PostgreSQL) 18.4").
fn major_version(bin: &Path) -> String {
    let output = Command::new(bin.join("pg_ctl"))
        .arg("--version")
        .output()
        .unwrap_or_else(|err| panic!("running {}: {err}", bin.join("pg_ctl").display()));
    let version = String::from_utf8_lossy(&output.stdout);
    let release = version.split_whitespace().last().unwrap_or("unknown");
    release.split('.').next().unwrap_or(release).to_owned()
}

/// PostgreSQL refuses to run as root; as root, run it as the `postgres` system user.
fn cluster_user() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let exists = Command::new("id").arg("postgres").output();
    assert!(
        exists.is_ok_and(|out| out.status.success()),
        "running as root without DATABASE_URL: PostgreSQL will not run as root and there is no \
         `postgres` user to run it as; set DATABASE_URL or run the tests as another user"
    );
    Some("postgres".to_owned())
}

fn command(program: &Path, as_user: &Option<String>) -> Command {
    match as_user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("running {command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("a bound address").port()
}
