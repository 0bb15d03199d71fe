/*
 * sim-uno: a simulated Arduino Uno for nixflash's tests.
 *
 * An ATmega328P at 16 MHz (simavr) that starts in Arduino's ATmegaBOOT bootloader, as a real Uno
 * does after a reset (BOOTRST fuse programmed: the reset vector is the boot section). Its UART0 is
 * bridged to a pseudo-terminal, so avrdude and ravedude can upload to it with `-P <pty>` and a test
 * can read what the firmware prints. Changes of PB5 (Arduino pin 13, the "L" LED) are reported with
 * their simulated time.
 *
 * Build:  cc -O2 -o sim-uno sim-uno.c -lsimavr -lelf
 * Usage:  sim-uno --bootloader FILE.hex [--max-cycles N] [--max-wall-ms N] [--speed X]
 *
 * stdout, one line per event (line-buffered):
 *   pty /dev/pts/N                  the serial port, printed once at start
 *   pb5 <cycle> <microseconds> <0|1>  PB5 changed (simulated time since reset)
 *   exit <reason> <cycle>           the simulation stopped: max-cycles, max-wall, crashed, done
 *
 * SIGUSR1 resets the board (its RESET pin pulsed, as the auto-reset circuit does when avrdude drops
 * DTR on a real port; a pty has no DTR): it starts in the bootloader again, its flash kept.
 *
 * --speed: how fast simulated time may run against the wall clock (1 = real time, the default, so
 * that avrdude's timeouts and the bootloader's meet as on a real board; 0 = unthrottled).
 * The simulation always stops at --max-cycles (default 10 minutes of simulated time) and at
 * --max-wall-ms (default 120000), and dies with its parent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <simavr/avr_ioport.h>
#include <simavr/avr_uart.h>
#include <simavr/sim_avr.h>
#include <simavr/sim_hex.h>
#include <simavr/sim_irq.h>

#define F_CPU 16000000UL
/* ATmega328P with BOOTSZ=00: a 2 KiB boot section at word 0x3C00, byte address 0x7800. */
#define BOOT_START_BYTES 0x7800u
/* How often (in cycles) the pty is polled and the clock compared: 62.5 us of simulated time. */
#define IO_PERIOD 1000u

static avr_t *avr;
static volatile sig_atomic_t reset_requested;

static void on_usr1(int sig)
{
	(void)sig;
	reset_requested = 1;
}
static int master = -1;

/* Bytes from the pty waiting for the UART's receive FIFO to have room. */
static uint8_t rx_buf[256];
static size_t rx_len, rx_pos;
static int uart_xoff = 1; /* no input until the UART says XON (its receiver is enabled) */

/* Bytes from the UART waiting for the pty to accept them. */
static uint8_t tx_buf[65536];
static size_t tx_len;

static int pb5 = -1;

static void die(const char *what)
{
	fprintf(stderr, "sim-uno: %s: %s\n", what, strerror(errno));
	exit(2);
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void uart_xon_cb(struct avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq; (void)value; (void)param;
	uart_xoff = 0;
}

static void uart_xoff_cb(struct avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq; (void)value; (void)param;
	uart_xoff = 1;
}

static void flush_tx(void)
{
	while (tx_len > 0) {
		ssize_t n = write(master, tx_buf, tx_len);
		if (n <= 0)
			return; /* EAGAIN: the pty's buffer is full; try again later */
		memmove(tx_buf, tx_buf + n, tx_len - (size_t)n);
		tx_len -= (size_t)n;
	}
}

static void uart_out_cb(struct avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq; (void)param;
	if (tx_len < sizeof(tx_buf))
		tx_buf[tx_len++] = (uint8_t)value;
	flush_tx();
}

static void pb5_cb(struct avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq; (void)param;
	int v = value ? 1 : 0;
	if (v == pb5)
		return;
	pb5 = v;
	printf("pb5 %llu %.1f %d\n", (unsigned long long)avr->cycle,
	       (double)avr->cycle * 1e6 / (double)F_CPU, v);
}

/* Moves bytes from the pty into the UART while its FIFO has room. */
static void feed_rx(avr_irq_t *uart_in)
{
	if (rx_pos == rx_len) {
		ssize_t n = read(master, rx_buf, sizeof(rx_buf));
		if (n <= 0)
			return; /* EAGAIN, or EIO while nobody has the port open */
		rx_len = (size_t)n;
		rx_pos = 0;
	}
	while (!uart_xoff && rx_pos < rx_len)
		avr_raise_irq(uart_in, rx_buf[rx_pos++]);
}

static void load_hex(const char *path)
{
	ihex_chunk_p chunks = NULL;
	int n = read_ihex_chunks(path, &chunks);
	if (n <= 0) {
		fprintf(stderr, "sim-uno: cannot read Intel HEX file %s\n", path);
		exit(2);
	}
	for (int i = 0; i < n; i++) {
		if (chunks[i].baseaddr + chunks[i].size > avr->flashend + 1) {
			fprintf(stderr, "sim-uno: %s does not fit in flash\n", path);
			exit(2);
		}
		memcpy(avr->flash + chunks[i].baseaddr, chunks[i].data, chunks[i].size);
	}
	free_ihex_chunks(chunks);
}

static void usage(void)
{
	fprintf(stderr, "usage: sim-uno --bootloader FILE.hex [--max-cycles N] [--max-wall-ms N] "
	                "[--speed X]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *bootloader = NULL;
	unsigned long long max_cycles = 600ULL * F_CPU;
	double max_wall = 120.0;
	double speed = 1.0;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--bootloader"))
			bootloader = argv[++i];
		else if (!strcmp(argv[i], "--max-cycles"))
			max_cycles = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--max-wall-ms"))
			max_wall = strtod(argv[++i], NULL) / 1000.0;
		else if (!strcmp(argv[i], "--speed"))
			speed = strtod(argv[++i], NULL);
		else
			usage();
	}
	if (!bootloader)
		usage();

	/* Never outlive the test that started us. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	avr = avr_make_mcu_by_name("atmega328p");
	if (!avr) {
		fprintf(stderr, "sim-uno: simavr has no atmega328p\n");
		return 2;
	}
	avr_init(avr);
	avr->frequency = F_CPU;
	avr->log = LOG_ERROR;
	load_hex(bootloader);
	/* BOOTRST programmed: every reset (power-on, watchdog) starts the boot section. */
	avr->reset_pc = BOOT_START_BYTES;
	avr->pc = BOOT_START_BYTES;

	/* The serial port. The slave stays open here so the port keeps its settings and its
	 * buffered bytes between the programs that open it (avrdude, then a monitor). */
	int slave;
	char name[256];
	if (openpty(&master, &slave, name, NULL, NULL) < 0)
		die("openpty");
	struct termios tio;
	if (tcgetattr(slave, &tio) < 0)
		die("tcgetattr");
	cfmakeraw(&tio);
	if (tcsetattr(slave, TCSANOW, &tio) < 0)
		die("tcsetattr");
	if (fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK) < 0)
		die("fcntl");

	uint32_t flags = 0;
	avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
	flags &= ~(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
	avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
	avr_irq_t *uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
	avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
	                        uart_out_cb, NULL);
	avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
	                        uart_xon_cb, NULL);
	avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
	                        uart_xoff_cb, NULL);
	avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('B'), IOPORT_IRQ_PIN0 + 5),
	                        pb5_cb, NULL);

	signal(SIGUSR1, on_usr1);
	printf("pty %s\n", name);

	double start = now_seconds();
	avr_cycle_count_t next_io = 0;
	const char *reason = "done";
	for (;;) {
		int state = avr_run(avr);
		if (state == cpu_Done)
			break;
		if (state == cpu_Crashed) {
			reason = "crashed";
			break;
		}
		if (reset_requested) {
			reset_requested = 0;
			avr_reset(avr);
		}
		if (avr->cycle < next_io)
			continue;
		next_io = avr->cycle + IO_PERIOD;
		if (avr->cycle >= max_cycles) {
			reason = "max-cycles";
			break;
		}
		flush_tx();
		feed_rx(uart_in);
		double wall = now_seconds() - start;
		if (wall >= max_wall) {
			reason = "max-wall";
			break;
		}
		if (speed > 0) {
			double ahead = (double)avr->cycle / F_CPU / speed - wall;
			if (ahead > 0.002) {
				struct timespec ts = { 0, (long)(ahead * 1e9) };
				nanosleep(&ts, NULL);
			}
		}
	}
	flush_tx();
	printf("exit %s %llu\n", reason, (unsigned long long)avr->cycle);
	avr_terminate(avr);
	return strcmp(reason, "crashed") == 0 ? 1 : 0;
}
