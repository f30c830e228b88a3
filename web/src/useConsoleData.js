// The console's data: the VM list and pools from the API, kept live by the
// change feed (job progress in place, any other change one reload), and
// the toasts that tell how each clone ended.
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiError, followEvents, takeTokenFromUrl } from './api.js';
import { keepProgress } from './status.js';

let toastSeq = 0;

export function useConsoleData() {
  const [vms, setVms] = useState(null);
  const [pools, setPools] = useState([]);
  const [error, setError] = useState(null);
  const [needToken, setNeedToken] = useState(false);
  const [toasts, setToasts] = useState([]);
  const latest = useRef([]);  // the list as last loaded, for naming a job's source in its toast

  // changes: a clone's identity changes, listed under the body (Toasts.jsx).
  const toast = useCallback((variant, title, body, changes) => {
    const key = ++toastSeq;
    setToasts((t) => [...t, { key, variant, title, body, changes }]);
  }, []);

  const reload = useCallback(async () => {
    try {
      const [list, poolList] = await Promise.all([api.vms(), api.pools()]);
      setVms((shown) => keepProgress(shown, list));
      latest.current = list;
      setPools(poolList);
      setError(null);
      setNeedToken(false);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setNeedToken(true);
      else setError(e.message);
    }
  }, []);

  // Job events carry progress; the end of a job is told in a toast.
  const onJob = useCallback(async (data) => {
    if (data.state === 'running') {
      setVms((list) => list && list.map((vm) => (vm.job === data.id ? { ...vm, percent: data.percent, queued: false } : vm)));
      return;
    }
    let job;
    try {
      job = await api.job(data.id);
    } catch {
      return;
    }
    const source = latest.current.find((vm) => vm.id === job.source_vm)?.name || `VM ${job.source_vm}`;
    if (job.state === 'failed' && job.error_kind === 'source_did_not_stop') {
      toast('danger', `${source} failed to shut down`,
        `Power off ${source} manually, then open Clone again. (${job.error})`);
    } else if (job.state === 'failed') {
      toast('danger', `Cloning ${job.clone_name} failed`, job.error);
    } else if (job.state === 'cancelled') {
      toast('info', `Cloning ${job.clone_name} cancelled`, 'The clone and its disk images were removed.');
    } else if (job.state === 'succeeded') {
      // What was made new (issue #15), when the job says.
      toast('success', `${job.clone_name} is ready`, `Cloned from ${source}.`, job.identity_changes);
    }
  }, [toast]);

  useEffect(() => {
    takeTokenFromUrl();
    reload();
    let timer = null;
    const soon = () => {  // many events in a burst: one reload
      if (!timer) timer = setTimeout(() => { timer = null; reload(); }, 100);
    };
    const stop = followEvents((kind, data) => {
      if (kind === 'job') onJob(data);
      if (kind === 'job' && data.state === 'running') return;
      soon();
    }, reload);
    return () => { stop(); clearTimeout(timer); };
  }, [reload, onJob]);

  const closeToast = useCallback((key) => setToasts((all) => all.filter((x) => x.key !== key)), []);
  return { vms, pools, error, needToken, toasts, toast, closeToast, reload };
}
