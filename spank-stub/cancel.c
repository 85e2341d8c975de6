/*
 * Is the step being cancelled? Asked of slurmctld with slurmstepd's own libslurm
 * (slurm_load_job, slurm_get_job_steps, found at run time: nothing is linked), so a
 * wait in user_init ends when the step's job or step is no longer running (cancel.h).
 */
#include <dlfcn.h>
#include <stddef.h>
#include <time.h>

#include <slurm/slurm.h>

#include "cancel.h"
#include "child.h"

typedef int (*load_job_fn)(job_info_msg_t **, uint32_t, uint16_t);
typedef void (*free_job_fn)(job_info_msg_t *);
typedef int (*get_steps_fn)(time_t, uint32_t, uint32_t, job_step_info_response_msg_t **, uint16_t);
typedef void (*free_steps_fn)(job_step_info_response_msg_t *);

static const struct pyxis_job *watched;
static long long next_look_ms;
static int cancelled;

void cancel_watch(const struct pyxis_job *job)
{
	watched = job;
	next_look_ms = 0;
	cancelled = 0;
}

/* Running, or suspended (scontrol suspend: resumed later, not cancelled), and not completing. */
static int running(uint32_t state)
{
	uint32_t base = state & JOB_STATE_BASE;

	return (base == JOB_RUNNING || base == JOB_SUSPENDED) && !(state & JOB_COMPLETING);
}

/* 1: the job or the step no longer runs; 0: it runs, or slurmctld could not say. */
static int ask(uint32_t jobid, uint32_t stepid)
{
	load_job_fn load_job = (load_job_fn)dlsym(RTLD_DEFAULT, "slurm_load_job");
	free_job_fn free_job = (free_job_fn)dlsym(RTLD_DEFAULT, "slurm_free_job_info_msg");
	get_steps_fn get_steps = (get_steps_fn)dlsym(RTLD_DEFAULT, "slurm_get_job_steps");
	free_steps_fn free_steps = (free_steps_fn)dlsym(RTLD_DEFAULT, "slurm_free_job_step_info_response_msg");
	job_info_msg_t *jobs = NULL;
	job_step_info_response_msg_t *steps = NULL;
	int gone = 0;

	if (load_job == NULL || free_job == NULL)
		return 0;
	if (load_job(&jobs, jobid, SHOW_ALL) == 0 && jobs != NULL) {
		gone = jobs->record_count == 0 || !running(jobs->job_array[0].job_state);
		free_job(jobs);
	}
	/* The step alone (scancel JOB.STEP): gone from the job's steps, or no longer running. */
	if (!gone && get_steps != NULL && free_steps != NULL && stepid <= SLURM_MAX_NORMAL_STEP_ID &&
	    get_steps(0, jobid, stepid, &steps, SHOW_ALL) == 0 && steps != NULL) {
		gone = steps->job_step_count == 0 || !running(steps->job_steps[0].state);
		free_steps(steps);
	}
	return gone;
}

int cancel_requested(long long since_ms)
{
	long long now;

	/* Once cancelled, still only waits that have lasted: the stub's own short children (a FUSE abort) run. */
	if (watched == NULL || since_ms < CANCEL_LOOK_SECONDS * 1000LL)
		return 0;
	if (cancelled)
		return 1;
	now = child_now_ms();
	if (now < next_look_ms)
		return 0;
	next_look_ms = now + CANCEL_LOOK_SECONDS * 1000LL;
	cancelled = ask(watched->jobid, watched->stepid);
	return cancelled;
}
