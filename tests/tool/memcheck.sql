-- memcheck.sql: a small sqlite3 workload for memcheck_tool_sqlite3
-- (tests/tool/CMakeLists.txt): inserts, an index, a join, deletes, vacuum.
create table t(id integer primary key, name text, v real);
with recursive c(i) as (select 1 union all select i + 1 from c where i < 3000)
insert into t select i, printf('row-%d', i), i * 0.25 from c;
create index t_name on t(name);
select count(*), sum(v) from t where name like 'row-1%';
create table u as select substr(name, 1, 5) as k, count(*) as n from t group by k;
select count(*) from t join u on substr(t.name, 1, 5) = u.k where u.n > 100;
delete from t where id % 2 = 0;
vacuum;
select count(*) from t;
