#!/usr/bin/sysbench
-- Fills wirecache's query cache for bench/cache.ts: every id of every table
-- once, with oltp_point_select's own statement ("SELECT c FROM sbtest%u
-- WHERE id=?", prepared and bound exactly as oltp_point_select does, so the
-- cache keys are the ones the measured runs use). Thread i of N reads the
-- ids i+1, i+1+N, ... of each table while it initialises; the events
-- themselves do nothing. Run with --events=<threads> --time=0.
--
--   sysbench bench/cache_fill.lua --tables=4 --table-size=10000 --threads=4 \
--     --events=4 --time=0 --db-ps-mode=auto ... run

require("oltp_common")

function prepare_statements()
   sysbench.opt.point_selects = 1
   prepare_point_selects()
end

local common_thread_init = thread_init

function thread_init()
   common_thread_init()
   local threads = sysbench.opt.threads
   for t = 1, sysbench.opt.tables do
      for id = sysbench.tid + 1, sysbench.opt.table_size, threads do
         param[t].point_selects[1]:set(id)
         stmt[t].point_selects:execute()
      end
   end
end

function event()
end
