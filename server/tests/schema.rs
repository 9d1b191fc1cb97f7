//! The schema, read from the catalog of a migrated database, against what running it on a distributed
//! PostgreSQL (Citus, distributed by program) needs: the README's "Scale-out" section rests on these checks.

use std::collections::{BTreeMap, BTreeSet};

use server::testkit::TestDb;

/// Tables without a `program_id` column, each with the reason it needs none.
const NOT_KEYED_BY_PROGRAM: &[(&str, &str)] = &[
    (
        "programs",
        "the tenants themselves: a reference table, copied to every node",
    ),
    (
        "sign_in_failures",
        "holds no tenant data (an email and a client address) and has no keys: stays on the coordinator",
    ),
    (
        "wallet_channels",
        "the server's wallet settings (which services get deliveries), no tenant data: a reference table",
    ),
    (
        "contact_key_check",
        "one row for the whole database: which key its contacts are kept under; a reference table",
    ),
    (
        "_sqlx_migrations",
        "the migration tool's own bookkeeping, on the coordinator",
    ),
];

/// The project's tables in schema public.
async fn tables(db: &TestDb) -> BTreeSet<String> {
    sqlx::query_scalar::<_, String>(
        "select c.relname::text
           from pg_catalog.pg_class c
           join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f')",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

async fn tables_with_program_id(db: &TestDb) -> BTreeSet<String> {
    sqlx::query_scalar::<_, String>(
        "select c.relname::text
           from pg_catalog.pg_class c
           join pg_catalog.pg_namespace n on n.oid = c.relnamespace
           join pg_catalog.pg_attribute a on a.attrelid = c.oid
          where n.nspname = 'public' and c.relkind in ('r', 'p')
            and a.attname = 'program_id' and not a.attisdropped",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Tables with no program_id that are not named exceptions, and keys on the exceptions that should not be.
async fn unexplained_tables(db: &TestDb) -> Vec<String> {
    let keyed = tables_with_program_id(db).await;
    let exceptions: BTreeSet<&str> = NOT_KEYED_BY_PROGRAM.iter().map(|(t, _)| *t).collect();
    let mut found: Vec<String> = tables(db)
        .await
        .into_iter()
        .filter(|t| !keyed.contains(t) && !exceptions.contains(t.as_str()))
        .collect();
    // The failures table has no keys for anything to point at.
    let keys: Vec<String> = sqlx::query_scalar(
        "select 'sign_in_failures: ' || k.conname::text
           from pg_catalog.pg_constraint k
           join pg_catalog.pg_class c on c.oid = k.conrelid
           join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relname = 'sign_in_failures' and k.contype in ('p', 'u', 'f')",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    found.extend(keys);
    found
}

/// Primary keys, unique constraints and indexes, exclusion constraints and foreign keys of tables with a
/// program_id that leave it out: (table, key, kind, definition).
async fn keys_without_program_id(db: &TestDb) -> Vec<(String, String, String, String)> {
    sqlx::query_as(
        "with tenant as (
             select c.oid, c.relname, a.attnum as program_attnum
               from pg_catalog.pg_class c
               join pg_catalog.pg_namespace n on n.oid = c.relnamespace
               join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attname = 'program_id'
              where n.nspname = 'public' and c.relkind in ('r', 'p') and not a.attisdropped
         )
         select t.relname::text as table_name, k.conname::text as key, k.contype::text as kind,
                pg_catalog.pg_get_constraintdef(k.oid) as definition
           from tenant t
           join pg_catalog.pg_constraint k on k.conrelid = t.oid
          where k.contype in ('p', 'u', 'x', 'f')
            and not (t.program_attnum = any (k.conkey))
         union all
         select t.relname::text, i.indexrelid::regclass::text, 'unique index',
                pg_catalog.pg_get_indexdef(i.indexrelid)
           from tenant t
           join pg_catalog.pg_index i on i.indrelid = t.oid
          where i.indisunique
            and not (t.program_attnum = any (i.indkey::int2[]))
            and not exists (select 1 from pg_catalog.pg_constraint k where k.conindid = i.indexrelid)
         order by 1, 2",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

/// Foreign keys that do not join program_id to program_id (or point at programs itself): (table, key,
/// definition).
async fn references_across_programs(db: &TestDb) -> Vec<(String, String, String)> {
    // Between two tenant tables a reference pairs program_id with program_id, so both rows are on one node.
    // A reference to a table with no program_id may only be to programs, the reference table.
    sqlx::query_as(
        "select c.relname::text as table_name, k.conname::text as key,
                pg_catalog.pg_get_constraintdef(k.oid) as definition
           from pg_catalog.pg_constraint k
           join pg_catalog.pg_class c on c.oid = k.conrelid
           join pg_catalog.pg_namespace n on n.oid = c.relnamespace
           join pg_catalog.pg_class r on r.oid = k.confrelid
           left join pg_catalog.pg_attribute ra
                  on ra.attrelid = r.oid and ra.attname = 'program_id' and not ra.attisdropped
           left join pg_catalog.pg_attribute ca
                  on ca.attrelid = c.oid and ca.attname = 'program_id' and not ca.attisdropped
          where n.nspname = 'public' and k.contype = 'f'
            and case
                    when ra.attnum is null then r.relname <> 'programs'
                    else ca.attnum is null
                         or not exists (select 1
                                          from unnest(k.conkey, k.confkey) as pair(local, remote)
                                         where pair.local = ca.attnum and pair.remote = ra.attnum)
                end
          order by 1, 2",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

/// Identity columns narrower than bigint: (table, column, type).
async fn narrow_identities(db: &TestDb) -> Vec<(String, String, String)> {
    // A distributed table's identity column must be bigint (each node draws from its own range of it).
    sqlx::query_as(
        "select c.relname::text, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
           from pg_catalog.pg_attribute a
           join pg_catalog.pg_class c on c.oid = a.attrelid
           join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relkind in ('r', 'p') and a.attidentity <> ''
            and a.atttypid <> 'pg_catalog.int8'::pg_catalog.regtype",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

/// A function the migrations define, with its source.
#[derive(Debug, sqlx::FromRow)]
struct Function {
    signature: String,
    security_definer: bool,
    config: Option<Vec<String>>,
    source: String,
}

async fn functions(db: &TestDb) -> Vec<Function> {
    // Functions in public that no extension brought.
    sqlx::query_as(
        "select p.oid::regprocedure::text as signature, p.prosecdef as security_definer,
                p.proconfig as config, p.prosrc as source
           from pg_catalog.pg_proc p
           join pg_catalog.pg_namespace n on n.oid = p.pronamespace
          where n.nspname = 'public'
            and not exists (select 1 from pg_catalog.pg_depend d
                             where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                               and d.objid = p.oid and d.deptype = 'e')
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

/// The source with its comments and string literals blanked out, so only code is left to read.
fn code_only(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                out.push(' ');
            }
            '\'' => {
                // '' inside a literal is a quote, and reads as the literal ending and another starting.
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                }
                out.push_str("''");
            }
            c => out.push(c),
        }
    }
    out
}

/// Names used in the code that are one of `tables` with no schema in front.
fn bare_table_references(source: &str, tables: &BTreeSet<String>) -> BTreeSet<String> {
    let code = code_only(source);
    let mut found = BTreeSet::new();
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == '.' || c == '"' || c == '$';
    for token in code.split(|c: char| !is_name(c)).filter(|t| !t.is_empty()) {
        let token = token.replace('"', "").to_lowercase();
        let first = token.split('.').next().unwrap_or_default();
        if tables.contains(first) {
            found.insert(token);
        }
    }
    found
}

/// Functions that name a table without its schema, with the names.
async fn functions_with_bare_table_names(db: &TestDb) -> BTreeMap<String, BTreeSet<String>> {
    let tables = tables(db).await;
    functions(db)
        .await
        .into_iter()
        .map(|f| {
            let found = bare_table_references(&f.source, &tables);
            (f.signature, found)
        })
        .filter(|(_, found)| !found.is_empty())
        .collect()
}

/// SECURITY DEFINER functions whose search_path is not pinned to pg_catalog first and pg_temp last.
async fn definers_with_loose_search_path(db: &TestDb) -> Vec<(String, Option<String>)> {
    functions(db)
        .await
        .into_iter()
        .filter(|f| f.security_definer)
        .filter_map(|f| {
            let path = f
                .config
                .iter()
                .flatten()
                .find_map(|setting| setting.strip_prefix("search_path="))
                .map(str::to_owned);
            // pg_temp named last: a caller's temporary table can never shadow one of ours.
            let pinned = path
                .as_deref()
                .is_some_and(|p| p.starts_with("pg_catalog") && p.ends_with("pg_temp"));
            (!pinned).then_some((f.signature, path))
        })
        .collect()
}

#[tokio::test]
async fn every_table_holds_a_program_id_or_is_a_named_exception() {
    let db = TestDb::new().await;
    let unexplained = unexplained_tables(&db).await;
    assert!(
        unexplained.is_empty(),
        "tables with no program_id and no reason in NOT_KEYED_BY_PROGRAM: {unexplained:?}"
    );
}

#[tokio::test]
async fn every_key_of_tenant_data_holds_program_id() {
    let db = TestDb::new().await;
    let missing = keys_without_program_id(&db).await;
    assert!(
        missing.is_empty(),
        "keys of tenant tables without program_id: {missing:#?}"
    );
}

#[tokio::test]
async fn every_foreign_key_between_tenant_tables_joins_on_program_id() {
    let db = TestDb::new().await;
    let crossing = references_across_programs(&db).await;
    assert!(
        crossing.is_empty(),
        "foreign keys that do not join on program_id: {crossing:#?}"
    );
}

#[tokio::test]
async fn identity_columns_of_tenant_tables_are_bigint() {
    let db = TestDb::new().await;
    let narrow = narrow_identities(&db).await;
    assert!(
        narrow.is_empty(),
        "identity columns narrower than bigint: {narrow:?}"
    );
}

#[tokio::test]
async fn every_function_names_tables_with_their_schema() {
    let db = TestDb::new().await;
    let signatures: Vec<String> = functions(&db)
        .await
        .into_iter()
        .map(|f| f.signature)
        .collect();
    for rpc in [
        "process_claim_attempt(",
        "process_membership_transaction(",
        "void_transaction(",
    ] {
        assert!(
            signatures.iter().any(|s| s.starts_with(rpc)),
            "{rpc} {signatures:?}"
        );
    }
    let bare = functions_with_bare_table_names(&db).await;
    assert!(
        bare.is_empty(),
        "functions naming tables without `public.`: {bare:#?}"
    );
}

#[tokio::test]
async fn every_security_definer_function_pins_its_search_path() {
    let db = TestDb::new().await;
    let loose = definers_with_loose_search_path(&db).await;
    assert!(loose.is_empty(), "{loose:?}");
}

#[tokio::test]
async fn the_checks_find_tables_and_functions_that_break_the_rules() {
    let db = TestDb::new().await;
    sqlx::raw_sql(
        "create table prizes (
             program_id uuid not null references programs (id),
             id uuid not null,
             code text not null unique,
             staff_id uuid,
             seq integer generated always as identity,
             primary key (program_id, id),
             foreign key (staff_id, program_id) references staff (program_id, id)
         );
         create unique index prizes_seq_idx on prizes (seq);
         create table notes (id uuid primary key, body text);
         create function public.count_prizes() returns bigint language sql security definer
             as 'select count(*) from prizes';",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    assert_eq!(unexplained_tables(&db).await, vec!["notes".to_owned()]);
    let keys: Vec<String> = keys_without_program_id(&db)
        .await
        .into_iter()
        .map(|(table, key, ..)| format!("{table} {key}"))
        .collect();
    assert_eq!(keys, ["prizes prizes_code_key", "prizes prizes_seq_idx"]);
    let crossing: Vec<String> = references_across_programs(&db)
        .await
        .into_iter()
        .map(|(table, _, definition)| format!("{table} {definition}"))
        .collect();
    assert_eq!(
        crossing,
        ["prizes FOREIGN KEY (staff_id, program_id) REFERENCES staff(program_id, id)"]
    );
    assert_eq!(
        narrow_identities(&db).await,
        [("prizes".to_owned(), "seq".to_owned(), "integer".to_owned())]
    );
    let bare = functions_with_bare_table_names(&db).await;
    assert_eq!(
        bare.get("count_prizes()")
            .map(|names| names.iter().map(String::as_str).collect::<Vec<_>>()),
        Some(vec!["prizes"])
    );
    assert_eq!(
        definers_with_loose_search_path(&db).await,
        [("count_prizes()".to_owned(), None)]
    );
}

#[test]
fn the_reader_of_function_sources_finds_bare_names_and_only_them() {
    let tables: BTreeSet<String> = ["transactions", "staff", "programs"]
        .map(String::from)
        .into();
    let source = "
        -- a comment about transactions
        select * from public.transactions t join staff s on s.id = t.staff_id
        where t.note = 'programs'; /* programs */ insert into programs values (1);
        update transactions.x set staff_id = p_staff_id;";
    assert_eq!(
        bare_table_references(source, &tables),
        ["staff", "programs", "transactions.x"]
            .map(String::from)
            .into()
    );
}
