"""The GitLab client against the strict fake GitLab: what it bridges, paging and hostile
answers."""
