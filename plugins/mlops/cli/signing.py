"""``python -m mlops signing sign|resign|fetch``: sign, re-sign after a key rotation, fetch a verified copy."""

from __future__ import annotations

from pathlib import Path

from mlops.registry.champion import resign
from mlops.registry.signing import UnverifiedModel, sign_version, verified_copy


def main(argv: list[str] | None = None) -> int:
    """``python -m mlops.signing``, with the key from Airflow's secrets backend (``mlops_signing``):

    - ``resign --pipeline churn --old-conn mlops_signing_old``: after a rotation, re-sign the
      versions that verify under the old key; exit 4 when some were refused.
    - ``sign --pipeline churn --version 3 [--force]``: sign a version registered before signing
      existed (or signed by the older scheme), and the champion moves and gate decision recorded on
      it before those were signed, as they stand: each is printed; run it only once they are known
      to be good. ``--force`` re-signs a version signed with another key (a key lost for good).
      Exit 5 when it refuses.
    - ``fetch --pipeline churn --version 3 --dest DIR``: download and verify a version into DIR
      (what ``make serve`` serves from); exit 5 when it does not verify.

    The tracking server is ``mlflow_default``'s, its credentials from the same connection.
    """
    import argparse
    import sys

    from mlops.airflow.hooks.mlflow import MlflowHook
    from mlops.airflow.hooks.signing import signing_key

    parser = argparse.ArgumentParser(prog="python -m mlops signing")
    parser.add_argument("command", choices=["resign", "sign", "fetch"])
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--version")
    parser.add_argument("--dest", type=Path)
    parser.add_argument("--conn", default="mlops_signing", help="the connection holding the key")
    parser.add_argument("--old-conn", help="resign: the connection holding the previous key")
    parser.add_argument(
        "--force", action="store_true", help="sign: re-sign a version signed with another key"
    )
    args = parser.parse_args(argv)
    hook = MlflowHook()
    hook.apply_credentials()
    key = signing_key(args.conn)
    if args.command == "resign":
        if not args.old_conn:
            parser.error("resign needs --old-conn (the connection holding the previous key)")
        _, refused = resign(hook.client, args.pipeline, old=signing_key(args.old_conn), new=key)
        return 4 if refused else 0
    if not args.version:
        parser.error(f"{args.command} needs --version")
    if args.command == "sign":
        from mlops.registry.champion import sign_legacy_records

        try:
            signature = sign_version(
                hook.client,
                args.pipeline,
                args.version,
                key,
                require_trial=False,
                force=args.force,
                log=print,
            )
        except UnverifiedModel as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 5
        for line in sign_legacy_records(hook.client, args.pipeline, args.version, key, force=args.force):
            print(line)
        print(signature)
        return 0
    if args.dest is None:
        parser.error("fetch needs --dest")
    try:
        root = verified_copy(hook.client, args.pipeline, args.version, key, args.dest)
    except UnverifiedModel as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 5
    print(root)
    return 0
