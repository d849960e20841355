"""The functions a SQL probe may call: built-ins known to change nothing.

An allow-list, not a deny-list: a function PostgreSQL adds next year, or one
somebody creates in the database tonight, is refused until someone decides
it is harmless. At run time the probe's search_path is pinned to
``pg_catalog``, so these names can only mean the built-ins.

Left out on purpose, though some look harmless: anything that signals a
backend, sets a setting (``set_config``), takes an advisory lock, moves a
sequence (``nextval``/``setval``/``currval``), assigns a transaction id
(``txid_current``), reads or writes server files (``pg_read_file``,
``lo_*``), runs SQL given as text (``query_to_xml``, ``ts_stat``,
``table_to_xml``), talks to another server (``dblink*``), or resets statistics.
"""

from __future__ import annotations

AGGREGATES = {
    "count", "sum", "avg", "min", "max", "bool_and", "bool_or", "every", "string_agg", "array_agg",
    "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "stddev", "stddev_pop", "stddev_samp",
    "variance", "var_pop", "var_samp", "percentile_cont", "percentile_disc", "mode", "bit_and", "bit_or",
    "bit_xor", "corr", "covar_pop", "covar_samp", "regr_avgx", "regr_avgy", "regr_count", "regr_intercept",
    "regr_r2", "regr_slope", "regr_sxx", "regr_sxy", "regr_syy",
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value",
}
MATH = {
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt", "cbrt", "power", "pow", "exp",
    "ln", "log", "log10", "mod", "div", "pi", "degrees", "radians", "width_bucket", "gcd", "lcm",
    "scale", "min_scale", "trim_scale", "factorial", "random", "float8", "int4", "int8", "numeric",
}
STRINGS = {
    "length", "char_length", "character_length", "octet_length", "bit_length", "lower", "upper",
    "initcap", "left", "right", "substr", "substring", "position", "strpos", "replace", "translate",
    "btrim", "ltrim", "rtrim", "lpad", "rpad", "repeat", "reverse", "split_part", "concat", "concat_ws",
    "format", "quote_ident", "quote_literal", "quote_nullable", "md5", "sha224", "sha256", "sha384",
    "sha512", "encode", "decode", "to_hex", "ascii", "chr", "starts_with", "regexp_replace",
    "regexp_match", "regexp_matches", "regexp_split_to_array", "regexp_split_to_table", "regexp_like",
    "regexp_count", "regexp_substr", "regexp_instr", "string_to_array", "string_to_table",
    "array_to_string", "overlay", "normalize", "is_normalized", "similar_to_escape", "unistr", "text",
    "convert_from", "convert_to", "pg_client_encoding",
}
FORMATTING = {"to_char", "to_number", "to_date", "to_timestamp", "pg_size_pretty", "pg_size_bytes",
              "format_type", "pg_typeof", "pg_collation_for", "num_nulls", "num_nonnulls"}
DATE_TIME = {
    "now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday", "age",
    "date_trunc", "date_part", "extract", "date_bin", "make_interval", "make_date", "make_time",
    "make_timestamp", "make_timestamptz", "justify_days", "justify_hours", "justify_interval",
    "isfinite", "timezone", "overlaps",
}
ARRAYS_JSON = {
    "array_length", "array_lower", "array_upper", "array_ndims", "array_dims", "cardinality", "unnest",
    "array_position", "array_positions", "array_remove", "array_replace", "array_append", "array_prepend",
    "array_cat", "generate_series", "generate_subscripts",
    "to_json", "to_jsonb", "row_to_json", "array_to_json", "json_build_object", "jsonb_build_object",
    "json_build_array", "jsonb_build_array", "json_object", "jsonb_object", "json_array_length",
    "jsonb_array_length", "json_each", "jsonb_each", "json_each_text", "jsonb_each_text",
    "json_extract_path", "jsonb_extract_path", "json_extract_path_text", "jsonb_extract_path_text",
    "json_object_keys", "jsonb_object_keys", "json_array_elements", "jsonb_array_elements",
    "json_array_elements_text", "jsonb_array_elements_text", "json_typeof", "jsonb_typeof",
    "jsonb_pretty", "json_strip_nulls", "jsonb_strip_nulls", "jsonb_path_query", "jsonb_path_exists",
    "jsonb_path_query_array", "jsonb_path_query_first", "jsonb_path_match", "json_to_record",
    "jsonb_to_record", "json_to_recordset", "jsonb_to_recordset",
}
NETWORK = {"host", "hostmask", "family", "masklen", "netmask", "network", "abbrev", "broadcast",
           "inet_client_addr", "inet_client_port", "inet_server_addr", "inet_server_port"}
# What the server and this session are: all reads of state kept in memory.
SERVER = {
    "version", "current_database", "current_schema", "current_schemas", "current_setting",
    "pg_backend_pid", "pg_blocking_pids", "pg_safe_snapshot_blocking_pids", "pg_conf_load_time",
    "pg_postmaster_start_time", "pg_is_in_recovery", "pg_is_wal_replay_paused",
    "pg_get_wal_replay_pause_state", "pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn",
    "pg_last_xact_replay_timestamp", "pg_current_wal_lsn", "pg_current_wal_insert_lsn",
    "pg_current_wal_flush_lsn", "pg_wal_lsn_diff", "pg_walfile_name", "pg_jit_available",
    "pg_trigger_depth", "pg_listening_channels", "pg_notification_queue_usage", "pg_tablespace_location",
    "pg_my_temp_schema", "pg_is_other_temp_schema", "pg_current_snapshot", "pg_snapshot_xmin",
    "pg_snapshot_xmax", "txid_current_snapshot", "txid_snapshot_xmin", "txid_snapshot_xmax",
    "pg_xact_status", "txid_status", "mxid_age", "pg_control_checkpoint", "pg_control_system",
    "pg_control_init", "pg_control_recovery", "pg_lock_status", "pg_stat_have_stats",
    "pg_stat_get_snapshot_timestamp",
    # Waits, and changes nothing; the probe's statement_timeout bounds it.
    "pg_sleep",
}
CATALOG = {
    "pg_get_viewdef", "pg_get_indexdef", "pg_get_constraintdef", "pg_get_functiondef",
    "pg_get_function_arguments", "pg_get_function_result", "pg_get_function_identity_arguments",
    "pg_get_triggerdef", "pg_get_ruledef", "pg_get_expr", "pg_get_userbyid", "pg_get_serial_sequence",
    "pg_get_keywords", "pg_get_statisticsobjdef", "pg_get_partkeydef", "pg_get_partition_constraintdef",
    "pg_get_replica_identity_index", "pg_index_column_has_property", "pg_index_has_property",
    "pg_indexam_has_property", "pg_options_to_table", "pg_table_is_visible", "pg_type_is_visible",
    "pg_function_is_visible", "pg_operator_is_visible", "pg_opclass_is_visible",
    "pg_collation_is_visible", "pg_conversion_is_visible", "pg_statistics_obj_is_visible",
    "pg_describe_object", "pg_identify_object", "pg_identify_object_as_address", "to_regclass",
    "to_regproc", "to_regprocedure", "to_regoper", "to_regoperator", "to_regtype", "to_regnamespace",
    "to_regrole", "to_regcollation", "pg_encoding_to_char", "pg_char_to_encoding",
    "pg_tablespace_databases", "pg_partition_tree", "pg_partition_root", "pg_partition_ancestors",
    "col_description", "obj_description", "shobj_description",
    "pg_relation_size", "pg_total_relation_size", "pg_table_size", "pg_indexes_size", "pg_database_size",
    "pg_tablespace_size", "pg_column_size", "pg_relation_filenode", "pg_relation_filepath",
    "has_table_privilege", "has_column_privilege", "has_any_column_privilege", "has_database_privilege",
    "has_schema_privilege", "has_function_privilege", "has_sequence_privilege",
    "has_foreign_data_wrapper_privilege", "has_language_privilege", "has_server_privilege",
    "has_tablespace_privilege", "has_type_privilege", "has_parameter_privilege", "pg_has_role",
    "row_security_active", "acldefault", "aclexplode",
}
BUILT_IN = frozenset(AGGREGATES | MATH | STRINGS | FORMATTING | DATE_TIME | ARRAYS_JSON | NETWORK
                     | SERVER | CATALOG)
# Every statistics reader is named pg_stat_get_*; none of them writes
# (the writers are pg_stat_reset* and pg_stat_clear_snapshot).
STATISTICS_PREFIX = "pg_stat_get_"


def is_built_in_read(name: str) -> bool:
    return name in BUILT_IN or name.startswith(STATISTICS_PREFIX)
