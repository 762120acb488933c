#pragma once
// The always-on baseline, defined by the workload alone (not by the policies it is compared
// with), so that "cost vs always-on" means the same whatever else a report compares.
//
// Each deployment runs, for the whole run and warm from the start, its own peak need: the
// largest number of its requests in flight at once in any minute of the replay, divided by
// its slots and rounded up, within [min_instances, max_instances]. A request counts as in
// flight from its arrival for the time it takes on a full instance (the one its slots are
// counted against): its prompt at the profile's prefill rate, then its output tokens after
// the first at the per-sequence decode rate of a batch of `slots`. A deployment that receives
// no request keeps only its min_instances.
//
// Where the peaks of the deployments pinned to one device do not fit its memory together,
// the largest are trimmed to a common cap (never below one instance or min_instances) until
// they do: provisioning beyond the device is impossible, and the instances that do not fit
// would belong to the deployments started last, which would then time out every request.
#include <vector>

#include "sim/workload.h"

namespace zs::sim {

// A request's service time on an instance decoding `batch` sequences (no queueing).
double service_time_at_batch(const SimRequest& request, const ServiceProfile& profile, int batch);

// The instances always-on runs for each deployment (indexed like Workload::deployments).
std::vector<int> always_on_instances(const Workload& workload);

}  // namespace zs::sim
