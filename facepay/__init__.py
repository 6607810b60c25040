"""Face-pay: enrolment of insured people's photos, verification at the terminal, and their evidence.

The workflow around the models (terminal capture -> decision -> evidence record): it stores photos
and captures in the object store, templates and verifications in the index, and audits each step.
The models themselves (pixels in, faces out) are in ``vision``; the cross-check (``correlate``) reads
templates through :mod:`facepay.templates`.
"""
