"""Writes for the newsletter, one module per subject; keyword-only functions named <entity>_<action>.

Views, admin actions, commands and tasks call these and present the result.
"""
