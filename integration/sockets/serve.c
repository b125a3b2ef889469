/* The integration tests' socket-activated service (integration/sockets.rs), static so that
 * it runs on the busybox layer too. It checks sd_listen_fds(3)'s environment (LISTEN_PID
 * must be its own pid), says on stdout what it got, then serves every socket it was given
 * (3 .. 3+LISTEN_FDS-1): each connection or datagram gets one line back,
 * "NAME pid=PID got=TEXT". TEXT "exit" ends the service (code 0) after the answer,
 * "crash" ends it with code 1 without one. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX 64

static char *names[MAX];

static void answer(int i, const char *got, char *out, size_t size) {
    snprintf(out, size, "%s pid=%d got=%s\n", names[i] ? names[i] : "?", (int)getpid(), got);
}

static int verdict(const char *got) {
    if (strcmp(got, "crash") == 0) exit(1);
    return strcmp(got, "exit") == 0;
}

static void trim(char *buf, ssize_t n) {
    buf[n < 0 ? 0 : n] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
}

int main(void) {
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    char *fdnames = getenv("LISTEN_FDNAMES");
    if (!pid || !fds || atoi(pid) != (int)getpid()) {
        fprintf(stderr, "bad environment: LISTEN_PID=%s (pid %d) LISTEN_FDS=%s\n",
                pid ? pid : "-", (int)getpid(), fds ? fds : "-");
        return 3;
    }
    int n = atoi(fds);
    if (n < 1 || n > MAX) {
        fprintf(stderr, "bad LISTEN_FDS=%s\n", fds);
        return 3;
    }
    printf("serving LISTEN_FDS=%d LISTEN_FDNAMES=%s\n", n, fdnames ? fdnames : "-");
    fflush(stdout);
    char *copy = strdup(fdnames ? fdnames : "");
    for (int i = 0; i < n; i++) names[i] = strsep(&copy, ":");
    struct pollfd p[MAX];
    for (int i = 0; i < n; i++) {
        p[i].fd = 3 + i;
        p[i].events = POLLIN;
    }
    for (;;) {
        if (poll(p, n, -1) < 0) {
            if (errno == EINTR) continue;
            perror("poll");
            return 4;
        }
        for (int i = 0; i < n; i++) {
            if (!(p[i].revents & POLLIN)) continue;
            int type = 0;
            socklen_t len = sizeof type;
            getsockopt(p[i].fd, SOL_SOCKET, SO_TYPE, &type, &len);
            char buf[256], out[512];
            if (type == SOCK_DGRAM) {
                struct sockaddr_storage from;
                socklen_t flen = sizeof from;
                ssize_t r = recvfrom(p[i].fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &flen);
                trim(buf, r);
                int done = verdict(buf);
                answer(i, buf, out, sizeof out);
                sendto(p[i].fd, out, strlen(out), 0, (struct sockaddr *)&from, flen);
                if (done) return 0;
            } else {
                int c = accept(p[i].fd, NULL, NULL);
                if (c < 0) continue;
                ssize_t r = read(c, buf, sizeof buf - 1);
                trim(buf, r);
                int done = verdict(buf);
                answer(i, buf, out, sizeof out);
                (void)!write(c, out, strlen(out));
                close(c);
                if (done) return 0;
            }
        }
    }
}
