/* Loaded into vigild with LD_PRELOAD by test_daemon.py: records the mode of every Unix
 * socket file at the moment bind() creates it, and its mode and group at the moment a
 * chmod() is about to change them. A socket that is 0777 for a microsecond between its
 * bind and its chmod is invisible to anyone who looks at the file from outside; here it
 * is seen by the process that makes it, before it can change anything. No ptrace, so it
 * works under the sanitizer build too (with ASAN_OPTIONS=verify_asan_link_order=0).
 *
 * Each event is one line appended to $VIGIL_TEST_MODE_LOG: "bind|chmod MODE GID PATH",
 * MODE in octal. Without that variable it records nothing. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void note(const char* what, const char* path) {
  const char* out = getenv("VIGIL_TEST_MODE_LOG");
  struct stat st;
  if (out == NULL || lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) return;
  char line[4352];
  int n = snprintf(line, sizeof line, "%s %o %u %s\n", what, (unsigned)(st.st_mode & 07777),
                   (unsigned)st.st_gid, path);
  int fd = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  if (n > 0 && write(fd, line, (size_t)n) < 0) {
    /* nothing to do: the test then finds no record and fails */
  }
  close(fd);
}

int bind(int fd, const struct sockaddr* addr, socklen_t len) {
  static int (*real_bind)(int, const struct sockaddr*, socklen_t);
  if (real_bind == NULL)
    real_bind = (int (*)(int, const struct sockaddr*, socklen_t))dlsym(RTLD_NEXT, "bind");
  int rc = real_bind(fd, addr, len);
  if (rc == 0 && addr->sa_family == AF_UNIX && len > sizeof(sa_family_t)) {
    const struct sockaddr_un* un = (const struct sockaddr_un*)addr;
    char path[sizeof un->sun_path + 1];
    size_t n = len - sizeof(sa_family_t);
    if (n > sizeof un->sun_path) n = sizeof un->sun_path;
    memcpy(path, un->sun_path, n);
    path[n] = '\0';
    if (path[0] != '\0') note("bind", path); /* not an abstract socket */
  }
  return rc;
}

int chmod(const char* path, mode_t mode) {
  static int (*real_chmod)(const char*, mode_t);
  if (real_chmod == NULL) real_chmod = (int (*)(const char*, mode_t))dlsym(RTLD_NEXT, "chmod");
  note("chmod", path);
  return real_chmod(path, mode);
}
