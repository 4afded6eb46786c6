/* A stand-in for Windows' bcryptprimitives.dll, which Wine 8.0 (Debian 12's) lacks.
 *
 * Rust's standard library for Windows takes its random numbers (HashMap seeds) from
 * ProcessPrng in bcryptprimitives.dll, which every Windows since 10 has; Wine added the DLL in
 * 9.x. The Wine tests put this file into the test prefix's system32, where Windows keeps the real
 * one; it is never shipped in a bundle. Built by `cargo xtask windows`. */
#include <windows.h>

/* RtlGenRandom: advapi32's cryptographic random bytes, in Wine since its first releases. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
