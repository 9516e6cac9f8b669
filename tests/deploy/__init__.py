"""What is deployed: Kubernetes manifests, docker-compose, alert rules, the dashboard's queries."""
