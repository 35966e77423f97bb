/*
 * fuzz_mmap.h - makes read-only file mappings visible to AddressSanitizer.
 *
 * The pickle and NeuronIO cache readers mmap their files. A read past the end of a mapping stays
 * unnoticed while it lands in the last page's slack, so a driver that includes this header
 * replaces mmap/munmap (the executable's definitions win over libc's for the whole program):
 * a read-only mapping of a file becomes an exact-size malloc'd copy, whose end ASan guards.
 * Every other mapping goes to the kernel unchanged. Include it first, in one driver file only.
 */
#ifndef ELM_FUZZ_MMAP_H
#define ELM_FUZZ_MMAP_H

/* syscall() is a GNU/BSD extension: this header must come first in its driver. */
#define _DEFAULT_SOURCE

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FUZZ_MAX_MAPS 64
static struct {
    void *p;
    size_t len;
} fuzz_maps[FUZZ_MAX_MAPS];

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (fd >= 0 && !addr && prot == PROT_READ && len > 0) {
        for (int i = 0; i < FUZZ_MAX_MAPS; i++) {
            if (fuzz_maps[i].p)
                continue;
            char *p = malloc(len);
            if (!p)
                return MAP_FAILED;
            size_t got = 0;
            while (got < len) {
                ssize_t r = pread(fd, p + got, len - got, off + (off_t)got);
                if (r <= 0)
                    break;
                got += (size_t)r;
            }
            if (got != len) { /* the kernel would give SIGBUS past EOF: make it loud here */
                free(p);
                return MAP_FAILED;
            }
            fuzz_maps[i].p = p;
            fuzz_maps[i].len = len;
            return p;
        }
    }
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len);
int munmap(void *addr, size_t len) {
    for (int i = 0; i < FUZZ_MAX_MAPS; i++)
        if (fuzz_maps[i].p == addr && addr) {
            if (fuzz_maps[i].len != len)
                abort(); /* unmapping with another length than mapped: a bug in the reader */
            free(addr);
            fuzz_maps[i].p = NULL;
            return 0;
        }
    return (int)syscall(SYS_munmap, addr, len);
}

int posix_madvise(void *addr, size_t len, int advice);
int posix_madvise(void *addr, size_t len, int advice) {
    return 0; /* advice only; our copies are ordinary heap memory */
}

#endif
