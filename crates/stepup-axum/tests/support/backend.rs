//! Where a deployment's state lives (SQLite, PostgreSQL, PostgreSQL + Redis), and `on_backends!`,
//! which runs a scenario on several.

use super::*;
use stepup_test_env::{database_url, random_hex, redis_url};

/// Where the durable and the ephemeral state live.
#[derive(Clone)]
enum Kind {
    Sqlite {
        url: String,
    },
    Postgres {
        url: String,
        schema: String,
    },
    PostgresRedis {
        url: String,
        schema: String,
        redis: String,
        prefix: String,
    },
}

/// What the instances of one deployment share: the stores, the accounts, the outboxes and the
/// clock. Each [`App`] started on it is one instance, with its own pools.
pub struct Backend {
    pub name: &'static str,
    pub clock: ManualClock,
    pub users: Users,
    pub sms: SmsOutbox,
    pub mail: MemoryOutbox,
    pub dir: Arc<tempfile::TempDir>,
    kind: Kind,
}

impl Backend {
    fn new(name: &'static str, kind: Kind, dir: tempfile::TempDir) -> Self {
        let clock = ManualClock::at_unix(T0);
        Self {
            name,
            sms: SmsOutbox::new(clock.clone()),
            clock,
            users: Users::default(),
            mail: MemoryOutbox::default(),
            dir: Arc::new(dir),
            kind,
        }
    }

    /// SQLite in a file of a temporary directory.
    pub async fn sqlite() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("stepup.db").display());
        Some(Self::new("sqlite", Kind::Sqlite { url }, dir))
    }

    /// PostgreSQL in a schema of the test's own (created by the first instance).
    pub async fn postgres() -> Option<Self> {
        let url = database_url()?;
        let schema = format!("stepup_axum_{}", random_hex());
        let dir = tempfile::tempdir().unwrap();
        Some(Self::new("postgres", Kind::Postgres { url, schema }, dir))
    }

    /// PostgreSQL for the durable state, Redis (under a prefix of the test's own) for the
    /// ephemeral state: how several instances run.
    pub async fn postgres_redis() -> Option<Self> {
        let redis = redis_url()?;
        let url = database_url()?;
        let hex = random_hex();
        let kind = Kind::PostgresRedis {
            url,
            schema: format!("stepup_axum_{hex}"),
            redis,
            prefix: format!("stepup_test_{hex}:"),
        };
        Some(Self::new(
            "postgres_redis",
            kind,
            tempfile::tempdir().unwrap(),
        ))
    }

    /// New stores over this backend (new pools: one instance's).
    pub async fn stores(&self) -> Stores {
        let clock: SharedClock = Arc::new(self.clock.clone());
        match &self.kind {
            Kind::Sqlite { url } => Stores::shared(
                SqliteStore::open_with_clock(url, clock)
                    .await
                    .expect("open SQLite"),
            ),
            Kind::Postgres { url, schema } => Stores::shared(
                PostgresStore::open_in_schema(url, schema, clock)
                    .await
                    .expect("open PostgreSQL in the test's schema"),
            ),
            Kind::PostgresRedis {
                url,
                schema,
                redis,
                prefix,
            } => {
                let durable = PostgresStore::open_in_schema(url, schema, clock.clone())
                    .await
                    .expect("open PostgreSQL in the test's schema");
                let ephemeral = RedisStore::open_with_clock(redis, clock)
                    .await
                    .expect("open Redis at REDIS_URL")
                    .with_prefix(prefix.clone());
                Stores::shared(durable).with_ephemeral(ephemeral)
            }
        }
    }

    /// An instance with the default options.
    pub async fn app(&self) -> App {
        self.app_with(Options::default()).await
    }

    /// An instance with `options`.
    pub async fn app_with(&self, options: Options) -> App {
        App::start(self, options).await
    }

    /// Ends the test: drops the PostgreSQL schema, if any (a failed test leaves it behind).
    pub async fn finish(self) {
        let (Kind::Postgres { url, schema } | Kind::PostgresRedis { url, schema, .. }) = &self.kind
        else {
            return;
        };
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .expect("connect to DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&pool)
        .await
        .expect("drop the test's schema");
        pool.close().await;
    }
}

/// Runs each `async fn scenario(backend: &Backend)` on every named backend (`sqlite`,
/// `postgres`, `postgres_redis`), as the tests `scenario::sqlite`, `scenario::postgres`, …:
///
/// ```ignore
/// on_backends!([sqlite, postgres] a_scenario, another_scenario);
/// ```
///
/// A backend that cannot run here (no `DATABASE_URL`, no `REDIS_URL`) is skipped with its reason
/// printed, except under `CI=true`, where the test fails.
macro_rules! on_backends {
    ($backends:tt $($scenario:ident),+ $(,)?) => {
        $( on_backends!(@one $backends $scenario); )+
    };
    (@one [$($backend:ident),+] $scenario:ident) => {
        mod $scenario {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $backend() {
                    let Some(backend) = crate::support::Backend::$backend().await else {
                        return;
                    };
                    super::$scenario(&backend).await;
                    backend.finish().await;
                }
            )+
        }
    };
}
pub(crate) use on_backends;
