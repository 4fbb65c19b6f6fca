#!/usr/bin/sysbench
-- The expensive query of bench/cache.ts (BENCH_CACHE_QUERY=range): one range
-- aggregate per event,
--
--   SELECT COUNT(*), SUM(k), MAX(LENGTH(c)) FROM sbtest%u WHERE id BETWEEN ? AND ?
--
-- over --range-size rows (oltp_common's option; the last start ids of a table
-- cover fewer rows), prepared and bound like oltp_common's own statements, so
-- --db-ps-mode=disable and auto both work. The table is drawn uniformly, the
-- start id with sysbench's --rand-type in 1..--table-size, so every
-- (table, start) pair is a key that the fill stored.
--
-- --fill=on: the cache fill. Thread i of N runs the start ids i+1, i+1+N, ...
-- of each table while it initialises, so every start id of every table runs
-- exactly once; the events themselves do nothing. Run it with
-- --events=<threads> --time=0.
--
--   sysbench bench/cache_range.lua --tables=4 --table-size=10000 --range-size=1000 \
--     --threads=4 --events=4 --time=0 --fill=on --db-ps-mode=auto ... run
--   sysbench bench/cache_range.lua --tables=4 --table-size=10000 --range-size=1000 \
--     --threads=4 --time=10 --rand-type=uniform --db-ps-mode=auto ... run

require("oltp_common")

sysbench.cmdline.options.fill = {"Run every start id of every table once at thread start (cache fill), then idle", false}

local SQL = "SELECT COUNT(*), SUM(k), MAX(LENGTH(c)) FROM sbtest%u WHERE id BETWEEN ? AND ?"

function prepare_statements()
   for t = 1, sysbench.opt.tables do
      stmt[t].range_agg = con:prepare(string.format(SQL, t))
      param[t].range_agg = {
         stmt[t].range_agg:bind_create(sysbench.sql.type.INT),
         stmt[t].range_agg:bind_create(sysbench.sql.type.INT),
      }
      stmt[t].range_agg:bind_param(unpack(param[t].range_agg))
   end
end

local function range_agg(t, start)
   param[t].range_agg[1]:set(start)
   param[t].range_agg[2]:set(start + sysbench.opt.range_size - 1)
   stmt[t].range_agg:execute()
end

local common_thread_init = thread_init

function thread_init()
   common_thread_init()
   if sysbench.opt.fill then
      local threads = sysbench.opt.threads
      for t = 1, sysbench.opt.tables do
         for start = sysbench.tid + 1, sysbench.opt.table_size, threads do
            range_agg(t, start)
         end
      end
   end
end

function event()
   if sysbench.opt.fill then
      return
   end
   range_agg(sysbench.rand.uniform(1, sysbench.opt.tables), sysbench.rand.default(1, sysbench.opt.table_size))
end
