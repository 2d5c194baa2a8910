#define _GNU_SOURCE
#include "work_marks.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

struct bp_mark_slot {
    _Atomic uint32_t state;
    int32_t signal;
    uint32_t length;
    int32_t previous; /* the thread's slot before this one (in-process only) */
    uint8_t record[BP_MARKS_RECORD_BYTES];
};

_Static_assert(sizeof(struct bp_mark_slot) == BP_MARKS_SLOT_BYTES, "a slot is BP_MARKS_SLOT_BYTES");

static uint8_t *mapping;
static struct bp_mark_slot *slots;
static _Atomic uint32_t next_hint;
static _Thread_local int32_t current_slot = -1;
static _Thread_local int alternate_stack_ready;

static const int guarded_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE};
#define GUARDED_SIGNAL_COUNT (sizeof guarded_signals / sizeof guarded_signals[0])
static struct sigaction previous_actions[GUARDED_SIGNAL_COUNT];

/* Only async-signal-safe work: memory writes, sigaction, raise. */
static void on_fatal_signal(int signal_number, siginfo_t *info, void *context) {
    (void)context;
    int32_t slot = current_slot;
    if (slots && slot >= 0 && slot < BP_MARKS_SLOT_COUNT) {
        slots[slot].signal = signal_number;
        atomic_store_explicit(&slots[slot].state, BP_MARK_FAULT, memory_order_release);
    }
    for (size_t index = 0; index < GUARDED_SIGNAL_COUNT; index++) {
        if (guarded_signals[index] == signal_number) {
            sigaction(signal_number, &previous_actions[index], NULL);
            break;
        }
    }
    /*
     * A fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE raised by an instruction) happens again when the
     * handler returns, now reaching the previous handler with its original details. A signal sent
     * by the process itself (abort, raise, a trap instruction that has completed) is sent again.
     */
    int sent = info == NULL || info->si_code <= 0;
    if (sent || signal_number == SIGTRAP || signal_number == SIGABRT) raise(signal_number);
}

static void prepare_alternate_stack(void) {
    if (alternate_stack_ready) return;
    alternate_stack_ready = 1;
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return;
    size_t size = 64 * 1024;
    void *memory = malloc(size);
    if (!memory) return;
    stack_t stack = {.ss_sp = memory, .ss_flags = 0, .ss_size = size};
    if (sigaltstack(&stack, NULL) != 0) free(memory);
    /* Kept for the life of the thread; threads doing marked work live as long as the process. */
}

int bp_marks_open(const char *path) {
    if (mapping) return EALREADY;
    /*
     * The file is prepared under a temporary name and renamed into place once locked, so that a
     * process looking for ended processes' files never takes the lock of one being created.
     */
    size_t length = strlen(path);
    char *temporary = malloc(length + 5);
    if (!temporary) return ENOMEM;
    memcpy(temporary, path, length);
    memcpy(temporary + length, ".tmp", 5);
    int file = open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (file < 0) {
        int error = errno;
        free(temporary);
        return error;
    }
    int error = 0;
    if (flock(file, LOCK_EX | LOCK_NB) != 0 || ftruncate(file, BP_MARKS_FILE_BYTES) != 0) error = errno;
    void *memory = error ? MAP_FAILED : mmap(NULL, BP_MARKS_FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0);
    if (!error && memory == MAP_FAILED) error = errno;
    if (!error && rename(temporary, path) != 0) {
        error = errno;
        munmap(memory, BP_MARKS_FILE_BYTES);
    }
    if (error) {
        unlink(temporary);
        free(temporary);
        close(file);
        return error;
    }
    free(temporary);
    /* The descriptor stays open (and locked) for the life of the process. */
    uint8_t *bytes = memory;
    memcpy(bytes, BP_MARKS_MAGIC, 8);
    uint32_t counts[2] = {BP_MARKS_SLOT_COUNT, BP_MARKS_SLOT_BYTES};
    memcpy(bytes + 8, counts, sizeof counts);
    slots = (struct bp_mark_slot *)(bytes + BP_MARKS_HEADER_BYTES);
    mapping = bytes;

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fatal_signal;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    for (size_t index = 0; index < GUARDED_SIGNAL_COUNT; index++) {
        sigaction(guarded_signals[index], &action, &previous_actions[index]);
    }
    return 0;
}

int bp_marks_is_open(void) { return mapping != NULL; }

int32_t bp_marks_begin(const uint8_t *record, size_t length) {
    if (!slots) return -1;
    prepare_alternate_stack();
    uint32_t start = atomic_fetch_add_explicit(&next_hint, 1, memory_order_relaxed);
    for (uint32_t probe = 0; probe < BP_MARKS_SLOT_COUNT; probe++) {
        int32_t slot = (int32_t)((start + probe) % BP_MARKS_SLOT_COUNT);
        uint32_t expected = BP_MARK_FREE;
        if (!atomic_compare_exchange_strong_explicit(&slots[slot].state, &expected, BP_MARK_WRITING, memory_order_acquire,
                                                     memory_order_relaxed)) {
            continue;
        }
        size_t kept = length < BP_MARKS_RECORD_BYTES ? length : BP_MARKS_RECORD_BYTES;
        if (kept > 0) memcpy(slots[slot].record, record, kept);
        slots[slot].length = (uint32_t)kept;
        slots[slot].signal = 0;
        slots[slot].previous = current_slot;
        atomic_store_explicit(&slots[slot].state, BP_MARK_ACTIVE, memory_order_release);
        current_slot = slot;
        return slot;
    }
    return -1;
}

void bp_marks_end(int32_t token) {
    if (!slots || token < 0 || token >= BP_MARKS_SLOT_COUNT) return;
    current_slot = slots[token].previous;
    atomic_store_explicit(&slots[token].state, BP_MARK_FREE, memory_order_release);
}

void bp_marks_clear_all(void) {
    if (!slots) return;
    for (int32_t slot = 0; slot < BP_MARKS_SLOT_COUNT; slot++) {
        atomic_store_explicit(&slots[slot].state, BP_MARK_FREE, memory_order_release);
    }
}

int32_t bp_marks_current_slot(void) { return current_slot; }
