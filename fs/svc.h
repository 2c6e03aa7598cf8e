/*
 * svc.h - the daemon as a service: readiness and stop notices for a
 * service manager (sd_notify), and its messages in syslog once it has no
 * terminal.
 */
#ifndef SWAFS_SVC_H
#define SWAFS_SVC_H

/*
 * Send stderr to syslog (facility daemon, ident "swafs"), one record per
 * line; lines holding "warning:" get LOG_WARNING, others LOG_ERR.  Called
 * once the daemon has gone to the background, where stderr is /dev/null.
 * Returns 0 or -errno (stderr is then left as it was).
 */
int svc_log_to_syslog(void);

/* Tell the service manager, if any (NOTIFY_SOCKET), that the mount is up
 * and its control socket answers. */
void svc_ready(void);

/* Tell the service manager that the daemon is stopping. */
void svc_stopping(void);

#endif
