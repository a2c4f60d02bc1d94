//! The PostgreSQL backend: one `tokio-postgres` connection (no TLS: the server is on
//! loopback), prepared statements cached per SQL text, and an optional schema of the
//! service's own, created on connect and put first on the search path. A connection the
//! server closed is opened again before the next transaction.

use std::collections::HashMap;

use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::{DbError, Row, Value};

/// A live connection and how to make it again.
pub(super) struct Pg {
    config: Config,
    schema: Option<String>,
    client: Client,
    statements: HashMap<String, Statement>,
}

impl Pg {
    /// Connect to `url`; with a `schema`, create it if missing and use it.
    pub(super) async fn connect(url: &str, schema: Option<&str>) -> Result<Pg, DbError> {
        let config: Config = url.parse()?;
        if let Some(schema) = schema {
            check_schema(schema)?;
        }
        let client = start(&config, schema).await?;
        Ok(Pg {
            config,
            schema: schema.map(str::to_owned),
            client,
            statements: HashMap::new(),
        })
    }

    /// Open the connection again if the server closed it; `true` when it did.
    pub(super) async fn reconnect_if_closed(&mut self) -> Result<bool, DbError> {
        if !self.client.is_closed() {
            return Ok(false);
        }
        tracing::warn!("the PostgreSQL connection was closed; connecting again");
        self.client = start(&self.config, self.schema.as_deref()).await?;
        self.statements.clear();
        Ok(true)
    }

    async fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Run a statement and read every row it returns.
    pub(super) async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let statement = self.statement(sql).await?;
        let rows = self.client.query(&statement, &refs(params)).await?;
        rows.iter().map(read_row).collect()
    }

    /// Run a statement that returns no rows.
    pub(super) async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let statement = self.statement(sql).await?;
        Ok(self.client.execute(&statement, &refs(params)).await?)
    }

    /// Run several statements without parameters.
    pub(super) async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        Ok(self.client.batch_execute(sql).await?)
    }
}

/// Connect, drive the connection on its own task, and select the schema.
async fn start(config: &Config, schema: Option<&str>) -> Result<Client, DbError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::error!(error = %err, "the PostgreSQL connection failed");
        }
    });
    if let Some(schema) = schema {
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
            ))
            .await?;
    }
    Ok(client)
}

/// A schema name is pasted into SQL, so only plain lowercase identifiers are accepted.
fn check_schema(schema: &str) -> Result<(), DbError> {
    let plain = (1..=63).contains(&schema.len())
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        Ok(())
    } else {
        Err(DbError::SchemaName(schema.to_owned()))
    }
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn read_row(row: &tokio_postgres::Row) -> Result<Row, DbError> {
    let mut values = Vec::with_capacity(row.len());
    for (column, info) in row.columns().iter().enumerate() {
        let ty = info.type_();
        let value = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(column)?.map(Value::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(column)?
                .map(|n| Value::Int(n.into()))
        } else if *ty == Type::TEXT || *ty == Type::VARCHAR {
            row.try_get::<_, Option<String>>(column)?.map(Value::Text)
        } else {
            return Err(DbError::ColumnType(ty.to_string()));
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(n) if *ty == Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
            Value::Int(n) => n.to_sql(ty, out),
            Value::Text(text) => text.as_str().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::check_schema;

    #[test]
    fn only_plain_schema_names_are_accepted() {
        assert!(check_schema("api_test_0a1b").is_ok());
        for bad in ["", "Api", "a\"; DROP", "a b", &"x".repeat(64)] {
            assert!(check_schema(bad).is_err(), "{bad:?}");
        }
    }
}
