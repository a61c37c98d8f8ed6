"""The overlap scorers nlg-eval wraps, called directly from pycocoevalcap 1.2.

nlg-eval's ``compute_metrics`` (Maluuba/nlg-eval, nlgeval/__init__.py) builds
``refs = {i: [ref strings]}`` and ``hyps = {i: [hyp string]}`` from stripped lines and calls
``compute_score(refs, hyps)`` of ``Bleu(4)`` (which scores with the ``'closest'`` reference
length), ``Meteor()`` (meteor-1.5.jar ``- - -stdio -l en -norm``), ``Rouge()`` (ROUGE-L,
beta 1.2) and ``Cider()`` (CIDEr-D, IDF from the references being scored). pycocoevalcap 1.2
ships the same scorers and the same METEOR jar and command line; :func:`overlap_scores` calls
them on one corpus.

Text encoding to METEOR: pycocoevalcap 1.2 writes each line as ``str.encode()`` (UTF-8) and
the jar's ``-stdio`` reader decodes ``System.in`` explicitly as UTF-8 (``Meteor.scoreStdio``
builds ``InputStreamReader(System.in, "UTF-8")``), so Chinese text arrives intact whatever the
JVM's default charset is; the jar only answers with numbers. Input lines never contain a line
break because :func:`tiktalk.metrics.tokenize.char_tokenize` removes all whitespace.

Empty hypotheses (checked on pycocoevalcap 1.2 + meteor-1.5.jar): none of the scorers fails
on an empty (tokenized) hypothesis, and each gives it its natural limit, 0:
BLEU counts 0 hypothesis n-grams and length 0 (its reference length still enters the brevity
penalty); ROUGE-L splits ``""`` into ``[""]`` (length 1, no zero division) whose LCS with a
non-empty reference is 0, so the sentence score is 0 and is averaged in; CIDEr's vector for
an empty hypothesis is all-zero, so its score is 0 and is averaged in; METEOR scores the line
``SCORE ||| ref ||| `` as 0 matches and its statistics enter the corpus aggregate.
Empty *references* are rejected upstream (:mod:`tiktalk.metrics.evaluate`): ROUGE-L would
give an empty hypothesis a perfect score against one.
"""

from __future__ import annotations

import shutil
import threading
from typing import Mapping, Sequence

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

Corpus = Mapping[int, Sequence[str]]

#: keys of :func:`overlap_scores`, raw scale (BLEU/METEOR/ROUGE-L in [0, 1], CIDEr in [0, 10])
OVERLAP_KEYS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")

#: numbers in METEOR 1.5's statistics of one segment (``MeteorStats.toString``): test and
#: reference length, test and reference function words, per matcher stage (exact, stem,
#: synonym, paraphrase) the test/reference content and test/reference function-word matches,
#: then chunks, test and reference word matches
METEOR_STATS = 23

JAVA_MISSING = ("METEOR needs Java 8+ ('java' on PATH; e.g. apt-get install "
                "openjdk-17-jre-headless, or conda install -c conda-forge openjdk=17)")


class MeteorUnavailable(RuntimeError):
    """No Java runtime to run METEOR's jar; the message says what to install."""


class MeteorProcess:
    """One METEOR 1.5 JVM (pycocoevalcap's ``Meteor``) reused for many corpus scores.

    Starting the JVM takes several seconds, so one process serves all reference slots of an
    evaluation. Use it as a context manager (or call :meth:`close`): the subprocess is killed
    and reaped on exit, also when scoring failed.
    """

    def __init__(self) -> None:
        if shutil.which("java") is None:
            raise MeteorUnavailable(JAVA_MISSING)
        from pycocoevalcap.meteor.meteor import Meteor

        #: the underlying pycocoevalcap ``Meteor`` (its ``compute_score`` may be called directly)
        self.meteor = Meteor()
        self.closed = False

    @property
    def pid(self) -> int:
        return self.meteor.meteor_p.pid

    def compute_score(self, gts: Corpus, res: Corpus) -> float:
        """Corpus-level METEOR in [0, 1] of ``res`` ({i: [hyp]}) against ``gts`` ({i: refs})."""
        if self.closed:
            raise RuntimeError("this METEOR process is closed")
        try:
            score, _ = self.meteor.compute_score(gts, res)
        except (ValueError, OSError) as exc:
            # The JVM died or answered garbage (float('') on EOF). pycocoevalcap 1.2 leaves its
            # lock held in that case; close() resets it.
            stderr = self._stderr_after_close()
            raise RuntimeError(f"METEOR subprocess failed ({exc}); its stderr: {stderr!r}") from exc
        return float(score)

    def segment_stats(self, gts: Corpus, res: Corpus) -> list[list[float]]:
        """METEOR's statistics of every segment of a corpus, in the order of ``res``: the
        jar's answer to the ``SCORE`` line pycocoevalcap sends for it (the same line
        :meth:`compute_score` sends), :data:`METEOR_STATS` numbers each. The corpus score is a
        function of their sum (:mod:`tiktalk.metrics.statistics`)."""
        if self.closed:
            raise RuntimeError("this METEOR process is closed")
        if gts.keys() != res.keys():
            raise ValueError("references and hypotheses must have the same indices")
        m = self.meteor
        with m.lock:
            try:
                lines = [m._stat(res[i][0], gts[i]) for i in res]
                stats = [[float(x) for x in line.split()] for line in lines]
            except (ValueError, OSError) as exc:
                stderr = self._stderr_after_close()
                raise RuntimeError(f"METEOR subprocess failed ({exc}); its stderr: {stderr!r}") from exc
        bad = [i for i, row in zip(res, stats) if len(row) != METEOR_STATS]
        if bad:
            stderr = self._stderr_after_close()
            raise RuntimeError(f"METEOR answered {len(stats[list(res).index(bad[0])])} numbers for "
                               f"segment {bad[0]}, expected {METEOR_STATS}; its stderr: {stderr!r}")
        return stats

    def _stderr_after_close(self) -> str:
        proc = self.meteor.meteor_p
        self.close(_keep_stderr=True)
        try:
            data = proc.stderr.read() if proc.stderr else b""
        except (OSError, ValueError):
            data = b""
        finally:
            if proc.stderr:
                proc.stderr.close()
        return data.decode("utf-8", "replace")[-2000:]

    def close(self, _keep_stderr: bool = False) -> None:
        """Kill and reap the JVM; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        proc = self.meteor.meteor_p
        try:
            proc.stdin.close()
        except OSError:  # broken pipe while flushing: the process is gone already
            pass
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        if not _keep_stderr:
            proc.stderr.close()
        # pycocoevalcap's Meteor.__del__ acquires this lock and would block forever if a failed
        # compute_score left it held; the process is reaped, so a fresh lock is correct.
        self.meteor.lock = threading.Lock()

    def __enter__(self) -> "MeteorProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def overlap_scores(gts: Corpus, res: Corpus, meteor: MeteorProcess | None) -> dict[str, float]:
    """Corpus-level BLEU-1..4, METEOR, ROUGE-L, CIDEr-D of one corpus, raw scale.

    ``gts`` maps an index to the list of (tokenized) references, ``res`` the same index to a
    one-element list with the (tokenized) hypothesis, exactly as nlg-eval passes them.
    ``meteor=None`` leaves METEOR out (no ``"meteor"`` key), like nlg-eval's
    ``metrics_to_omit``.
    """
    if not res:
        raise ValueError("cannot score an empty corpus")
    if gts.keys() != res.keys():
        raise ValueError("references and hypotheses must have the same indices")
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    scores = {f"bleu_{i + 1}": float(b) for i, b in enumerate(bleu)}
    if meteor is not None:
        scores["meteor"] = meteor.compute_score(gts, res)
    scores["rouge_l"] = float(rouge)
    scores["cider"] = float(cider)
    return scores
