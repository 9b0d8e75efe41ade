/* supervisord's event types ([eventlistener:x] events = ...) and their hierarchy: a listener
 * subscribed to PROCESS_STATE gets every PROCESS_STATE_*, to EVENT every event. */
#include "config/config.h"

#include <stddef.h>
#include <string.h>

static const char *const evtypes[] = {
    "EVENT",
    "PROCESS_STATE", "PROCESS_STATE_STOPPED", "PROCESS_STATE_EXITED", "PROCESS_STATE_STARTING",
    "PROCESS_STATE_STOPPING", "PROCESS_STATE_BACKOFF", "PROCESS_STATE_FATAL",
    "PROCESS_STATE_RUNNING", "PROCESS_STATE_UNKNOWN",
    "PROCESS_COMMUNICATION", "PROCESS_COMMUNICATION_STDOUT", "PROCESS_COMMUNICATION_STDERR",
    "PROCESS_LOG", "PROCESS_LOG_STDOUT", "PROCESS_LOG_STDERR",
    "REMOTE_COMMUNICATION",
    "SUPERVISOR_STATE_CHANGE", "SUPERVISOR_STATE_CHANGE_RUNNING",
    "SUPERVISOR_STATE_CHANGE_STOPPING",
    "TICK", "TICK_5", "TICK_60", "TICK_3600",
    "PROCESS_GROUP", "PROCESS_GROUP_ADDED", "PROCESS_GROUP_REMOVED",
};

const char *cr_evtype_check(const char *name, const char **hint)
{
    const char *best = NULL;
    int bestd = 4;
    for (size_t i = 0; i < sizeof evtypes / sizeof evtypes[0]; i++) {
        if (!strcmp(name, evtypes[i]))
            return evtypes[i];
        int d = cr_edit_distance(name, evtypes[i]);
        if (d < bestd) {
            bestd = d;
            best = evtypes[i];
        }
    }
    *hint = best;
    return NULL;
}

bool cr_evtype_matches(const char *sub, const char *name)
{
    if (!strcmp(sub, "EVENT") || !strcmp(sub, name))
        return true;
    size_t n = strlen(sub);
    return !strncmp(name, sub, n) && name[n] == '_';
}
