/**
 * Whether every call in a statement's text is of a built-in function or a
 * keyword followed by '(': used when the proxy has no list of the server's
 * stored functions (no account to read it) and must not run a statement
 * twice that might call one. A stored function cannot take a built-in's
 * name unqualified, so a name in this list is never a stored function;
 * anything else (and any `schema.name(`) may be one.
 */
const BUILTINS = new Set(
  `abs acos adddate addtime aes_decrypt aes_encrypt against all and any as ascii asin atan atan2 avg between bin binary bit_and
bit_count bit_length bit_or bit_xor by case cast ceil ceiling char char_length character_length charset check coalesce
collation compress concat concat_ws connection_id conv convert convert_tz cos cot count crc32 curdate current_date
current_time current_timestamp current_user curtime database date date_add date_format date_sub datediff day dayname
dayofmonth dayofweek dayofyear decimal default degrees dense_rank distinct div else elt exists exp export_set extract
field find_in_set first_value floor format found_rows from from_base64 from_days from_unixtime greatest group_concat
having hex hour if ifnull in inet_aton inet_ntoa insert instr int integer interval is isnull json_array json_arrayagg
json_contains json_extract json_keys json_length json_object json_objectagg json_quote json_search json_set
json_unquote json_valid key lag last_day last_insert_id last_value lcase lead least left length like limit ln
locate log log10 log2 lower lpad ltrim make_set makedate maketime match max md5 microsecond mid min minute mod month
monthname not now nth_value ntile nullif oct octet_length on or ord over partition password percent_rank period_add
period_diff pi position pow power quarter quote radians rand rank regexp regexp_instr regexp_replace regexp_substr
repeat replace reverse right round row row_count row_number rpad rtrim sec_to_time second select session_user sha sha1
sha2 sign signed sin sleep some soundex space sqrt std stddev stddev_pop stddev_samp str_to_date strcmp subdate substr
substring substring_index subtime sum sysdate system_user tan then time time_format time_to_sec timediff timestamp
timestampadd timestampdiff to_base64 to_days to_seconds trim truncate ucase uncompress unhex union unix_timestamp
unsigned upper user using utc_date utc_time utc_timestamp uuid uuid_short value values var_pop var_samp variance
varchar version week weekday weekofyear when where with year yearweek`.split(/\s+/),
);

/**
 * A name (maybe back-quoted, maybe qualified) followed by '(' (spaces
 * allowed). Tried only where a word starts, so the scan is linear however
 * long a word (a huge literal) is.
 */
const CALL = /(\.\s*)?`?(?<![\w$])([A-Za-z_$][\w$]*)`?\s*\(/g;
/** Texts longer than this are not scanned: the answer is "maybe not". */
const MAX_SCAN = 65_536;

/** True when every `name(` in `text` is a built-in or keyword; string literals should be blanked by the caller or are harmless (a false "no"). */
export function callsOnlyBuiltins(text: string): boolean {
  if (text.length > MAX_SCAN) return false;
  CALL.lastIndex = 0;
  for (let m = CALL.exec(text); m !== null; m = CALL.exec(text)) {
    if (m[1] !== undefined || !BUILTINS.has(m[2].toLowerCase())) return false;
  }
  return true;
}
