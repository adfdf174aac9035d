"""Commands that change a cluster take its home's lock one at a time: a second one waits (and says so)
instead of overwriting the first one's cluster.json; the lock is re-entrant within one process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from replab.core.state import home_lock


def test_a_changing_command_waits_for_the_lock_and_says_so(replab_cluster):
    home = replab_cluster.home
    env = dict(os.environ, REPLAB_HOME=str(home))
    with home_lock(home):
        with home_lock(home):  # re-entrant: the same process may take it again
            pass
        proc = subprocess.Popen([sys.executable, "-m", "replab", "pause", "mysql-s1"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.0)
        assert proc.poll() is None, proc.communicate()  # still waiting for the lock
        assert replab_cluster.engine.state(replab_cluster.node("mysql-s1")) == "running"
        # a command that only reads does not wait
        status = subprocess.run([sys.executable, "-m", "replab", "status", "--json"], env=env,
                                capture_output=True, text=True, timeout=30)
        assert status.returncode == 0
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "another replab command is changing the cluster" in err
    assert "paused" in out
    assert replab_cluster.engine.state(replab_cluster.node("mysql-s1")) == "paused"
    subprocess.run([sys.executable, "-m", "replab", "resume", "mysql-s1"], env=env, check=True,
                   capture_output=True, timeout=30)
