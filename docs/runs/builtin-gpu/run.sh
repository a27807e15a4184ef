#!/bin/bash
# On the device machine, in the repo root: the built-in downstream experiment (N = 40) for as many seeds as
# fit before a deadline ($1 s after the start), 4 seeds at a time, each seed's 4 arms side by side on the GPU.
set -u
T0=$(date +%s)
stamp() { echo "== $1 $(( $(date +%s) - T0 )) s"; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, os; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cores', os.cpu_count())"
(timeout 480 python3 -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py > $OUT/cuda_tests.txt 2>&1; echo "exit $?" >> $OUT/cuda_tests.txt) &
TESTS=$!
python3 docs/runs/builtin-gpu/params_edit.py || exit 1
python3 -m stages.synthesize > /tmp/synth.log 2>&1 || { tail -5 /tmp/synth.log; exit 1; }; stamp synthesize
python3 -m stages.downstream_test > /tmp/test.log 2>&1 || { tail -5 /tmp/test.log; exit 1; }; stamp downstream_test
python3 -m stages.arms 40 > /tmp/arms.log 2>&1 || { tail -5 /tmp/arms.log; exit 1; }; stamp arms
(cd data/downstream/arms/40 && find . -type f | sort | xargs md5sum) > $OUT/arms_md5.txt
(cd data/downstream/test && find . -type f | sort | xargs md5sum) > $OUT/test_md5.txt
export DEADLINE=$(( T0 + ${1:-400} )) T0
seq 0 95 | xargs -P 4 -I{} sh -c '[ $(date +%s) -lt $DEADLINE ] || exit 0; python3 -m stages.downstream 40 {} > /tmp/run{}.log 2>&1 && echo "seed {} $(( $(date +%s) - T0 )) s" || { echo "seed {} FAILED"; tail -3 /tmp/run{}.log; }'
stamp runs
tar czf $OUT/runs.tar.gz metrics/downstream data/downstream/runs
wait $TESTS; tail -3 $OUT/cuda_tests.txt; stamp done
