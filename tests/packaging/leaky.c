/*
 * leaky.c - a stand-in shared library that exports an internal-looking
 * name with default visibility, so that packaging_symbols_rejects can show
 * symbols.sh catching exactly the kind of leak it exists for.
 */
__attribute__((visibility("default"))) int dh_leaked_internal(void);

int dh_leaked_internal(void) { return 1; }
