/*
 * fuzz_input.h - a cursor over the fuzzer's input bytes, shared by the
 * fuzz targets.  Reading past the end yields zeros and marks the cursor
 * done, so a target's loop simply runs until the input is used up and every
 * input, however short, is a valid program.
 */
#ifndef DH_FUZZ_INPUT_H
#define DH_FUZZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p;
    size_t left;
    bool done; /* a read ran past the end */
} fuzz_in_t;

static inline uint8_t fin_u8(fuzz_in_t *in) {
    if (in->left == 0) {
        in->done = true;
        return 0;
    }
    in->left--;
    return *in->p++;
}

static inline uint16_t fin_u16(fuzz_in_t *in) {
    uint16_t lo = fin_u8(in);
    return (uint16_t)(lo | (uint16_t)fin_u8(in) << 8);
}

static inline uint32_t fin_u32(fuzz_in_t *in) {
    uint32_t lo = fin_u16(in);
    return lo | (uint32_t)fin_u16(in) << 16;
}

/* Divergence from the model: stop here, so the fuzzer saves the input. */
#define FUZZ_CHECK(cond)                 \
    do {                                 \
        if (!(cond)) __builtin_trap();   \
    } while (0)

#endif /* DH_FUZZ_INPUT_H */
