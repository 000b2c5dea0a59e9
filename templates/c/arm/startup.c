/*
 * startup.c - reset code of fpgagen's Cortex-M test image for qemu's mps2-an386 board (Cortex-M4).
 *
 * The vector table gives the initial stack pointer and the reset handler; the reset handler
 * copies .data from flash, clears .bss, opens newlib's semihosting streams (librdimon:
 * stdio and files go to the host through qemu's -semihosting) and calls exit(main()), which
 * reports main's return value as qemu's exit code. Link with mps2_an386.ld,
 * --specs=rdimon.specs and -nostartfiles.
 */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__, __stack_top__;
extern int main(void);
extern void initialise_monitor_handles(void);

void Reset_Handler(void);
void Default_Handler(void);
void _init(void);
void _fini(void);

/* An entry of the vector table: the initial stack pointer or a handler. */
typedef union {
    uint32_t *stack;
    void (*handler)(void);
} vector_t;

__attribute__((section(".isr_vector"), used))
const vector_t fpgagen_vectors[16] = {
    {.stack = &__stack_top__},
    {.handler = Reset_Handler},
    {.handler = Default_Handler}, /* NMI */
    {.handler = Default_Handler}, /* HardFault */
    {.handler = Default_Handler}, /* MemManage */
    {.handler = Default_Handler}, /* BusFault */
    {.handler = Default_Handler}, /* UsageFault */
    {0}, {0}, {0}, {0},
    {.handler = Default_Handler}, /* SVCall */
    {.handler = Default_Handler}, /* DebugMonitor */
    {0},
    {.handler = Default_Handler}, /* PendSV */
    {.handler = Default_Handler}, /* SysTick */
};

void Default_Handler(void)
{
    exit(99); /* a fault: end the emulation with a recognisable code */
}

/* newlib's __libc_init_array / __libc_fini_array call these; there are no constructors here. */
void _init(void)
{
}

void _fini(void)
{
}

void Reset_Handler(void)
{
    const uint32_t *src = &__data_load__;
    uint32_t *dst = &__data_start__;
    while (dst < &__data_end__) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }
    initialise_monitor_handles();
    exit(main());
}
