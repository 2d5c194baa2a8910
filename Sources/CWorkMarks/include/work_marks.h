/*
 * Work marks: a small table of "what this thread is doing" records in a file mapped shared into
 * the process, so that the record outlives the process when it dies.
 *
 * Before the process does work that could take it down (a plugin call, an execution transition),
 * the thread copies a record of the work into a free slot and marks it ACTIVE; when the work ends
 * the slot is freed. A fatal signal on a thread with a slot (SIGSEGV, SIGBUS, SIGILL, SIGTRAP,
 * SIGABRT, SIGFPE) marks that slot FAULT with the signal number, then lets the previous handler
 * (or the default action) end the process. The kernel keeps the mapped pages, so the next process
 * reads exactly which work was in flight and which one faulted. No system call happens per unit of
 * work: beginning and ending are memory writes.
 *
 * The process holds an exclusive flock on its file for its life; a file whose lock can be taken
 * belongs to a process that has ended.
 */
#ifndef BUDPIPELINE_WORK_MARKS_H
#define BUDPIPELINE_WORK_MARKS_H

#include <stddef.h>
#include <stdint.h>

#define BP_MARKS_MAGIC "BPMARKS1"

/* The file: a 64-byte header (magic, slot count, slot size), then the slots. */
enum {
    BP_MARKS_SLOT_COUNT = 512,
    BP_MARKS_SLOT_BYTES = 1024,
    BP_MARKS_HEADER_BYTES = 64,
    /* A slot: state, signal, record length, previous slot (4 bytes each), then the record. */
    BP_MARKS_RECORD_BYTES = BP_MARKS_SLOT_BYTES - 16,
    BP_MARKS_FILE_BYTES = BP_MARKS_HEADER_BYTES + BP_MARKS_SLOT_COUNT * BP_MARKS_SLOT_BYTES,
};

enum {
    BP_MARK_FREE = 0,
    BP_MARK_WRITING = 1,
    BP_MARK_ACTIVE = 2,
    BP_MARK_FAULT = 3,
};

/*
 * Creates (or truncates) the mark file at `path`, maps it, takes the exclusive lock and installs
 * the fatal-signal handlers. Returns 0, or an errno value (marks stay off). Call once.
 */
int bp_marks_open(const char *path);

/* Whether bp_marks_open succeeded. */
int bp_marks_is_open(void);

/*
 * Records `record` (at most BP_MARKS_RECORD_BYTES are kept) as the calling thread's current work.
 * Returns a token for bp_marks_end, or -1 when marks are off or every slot is taken.
 */
int32_t bp_marks_begin(const uint8_t *record, size_t length);

/* Ends the work `token` stands for; the thread's previous work (if any) is current again. */
void bp_marks_end(int32_t token);

/* Frees every slot: the process is stopping in order and none of its work died with it. */
void bp_marks_clear_all(void);

/* The slot the calling thread is working in, or -1 (for tests). */
int32_t bp_marks_current_slot(void);

#endif
